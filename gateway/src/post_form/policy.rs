//! A browser form's policy document: its parse and its evaluation against the form, with AWS's
//! codes and messages. Pure logic; `super` supplies the fields, the bucket and the time.
//!
//! Sources: "Creating a POST policy" (sigv4-HTTPPOSTConstructPolicy) for the rules (every field
//! but the exempt ones needs a condition, `${filename}` is expanded before the check,
//! `starts-with` on `Content-Type` applies to each comma-separated type) and wire captures of
//! S3 for the messages ("Invalid according to Policy: …" 403 AccessDenied, "Invalid Policy: …"
//! 400 InvalidPolicyDocument).

use base64::alphabet::STANDARD;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use s3s::{S3Error, S3ErrorCode};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Policies are base64 with or without padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A parsed policy document.
#[derive(Debug)]
pub struct Policy {
    /// When the policy stops authorizing uploads.
    pub expiration: OffsetDateTime,
    pub conditions: Vec<Condition>,
}

/// One condition of a policy. Field names are lowercased and without their `$`.
#[derive(Debug, PartialEq, Eq)]
pub enum Condition {
    /// `{"field": "value"}` or `["eq", "$field", "value"]`; `text` is how S3 quotes it when it
    /// fails.
    Eq {
        field: String,
        value: String,
        text: String,
    },
    /// `["starts-with", "$field", "prefix"]`.
    StartsWith {
        field: String,
        prefix: String,
        text: String,
    },
    /// `["content-length-range", min, max]`: the file's size, which is known only once s3s
    /// has read it, so s3s checks it.
    LengthRange { min: i64, max: i64 },
}

/// 400 InvalidPolicyDocument: the document itself is malformed.
fn invalid(message: impl std::fmt::Display) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidPolicyDocument,
        format!("Invalid Policy: {message}"),
    )
}

/// 403 AccessDenied: the form does not meet the policy.
fn denied(message: impl std::fmt::Display) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::AccessDenied,
        format!("Invalid according to Policy: {message}"),
    )
}

/// The form fields no condition needs to name (SigV4 and SigV2 forms).
pub fn is_exempt(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "policy" | "file" | "x-amz-signature" | "signature" | "awsaccesskeyid"
    ) || name.starts_with("x-ignore-")
}

/// The value a form gives a field: the last one of that name, as s3s reads it.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .rev()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Policy {
    /// Decodes the `policy` field: base64 of a JSON object with `expiration` (RFC 3339) and a
    /// non-empty `conditions` list. Errors are 400 InvalidPolicyDocument, except a condition
    /// whose field reference is not `$name` (403, as S3 reports it).
    pub fn parse(encoded: &str) -> Result<Self, S3Error> {
        let bytes = BASE64
            .decode(encoded.trim())
            .map_err(|_| invalid("invalid Base64 encoding."))?;
        let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(invalid("Invalid JSON."));
        };
        let expiration = match doc.get("expiration") {
            None => return Err(invalid("Policy missing expiration.")),
            Some(Value::String(s)) => OffsetDateTime::parse(s, &Rfc3339)
                .map_err(|_| invalid(format!("Invalid 'expiration' value: '{s}'")))?,
            Some(other) => return Err(invalid(format!("Invalid 'expiration' value: '{other}'"))),
        };
        let conditions = match doc.get("conditions") {
            Some(Value::Array(list)) if !list.is_empty() => list
                .iter()
                .map(Condition::parse)
                .collect::<Result<_, _>>()?,
            Some(Value::Array(_)) | None => return Err(invalid("Policy missing conditions.")),
            Some(_) => return Err(invalid("Invalid 'conditions' value: must be a List.")),
        };
        Ok(Self {
            expiration,
            conditions,
        })
    }

    /// Checks the fields sent before the file (`${filename}` already expanded) against the
    /// policy, in S3's order: expiry, fields no condition names, then each condition. `bucket`
    /// is the bucket of the URL, which `$bucket` conditions compare with.
    pub fn check(
        &self,
        fields: &[(String, String)],
        bucket: &str,
        now: OffsetDateTime,
    ) -> Result<(), S3Error> {
        if now >= self.expiration {
            return Err(denied("Policy expired."));
        }
        let extra: Vec<&str> = fields
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| !is_exempt(name) && !self.names(name))
            .collect();
        if !extra.is_empty() {
            return Err(denied(format!("Extra input fields: {}", extra.join(", "))));
        }
        let value = |name: &str| match name {
            "bucket" => Some(bucket),
            _ => field(fields, name),
        };
        for condition in &self.conditions {
            let (met, text) = match condition {
                Condition::Eq {
                    field,
                    value: v,
                    text,
                } => (value(field) == Some(v.as_str()), text),
                Condition::StartsWith {
                    field,
                    prefix,
                    text,
                } => (
                    value(field).is_some_and(|v| starts_with(field, v, prefix)),
                    text,
                ),
                Condition::LengthRange { .. } => continue,
            };
            if !met {
                return Err(denied(format!("Policy Condition failed: {text}")));
            }
        }
        Ok(())
    }

    /// Whether a condition names the field (and so allows it in the form).
    fn names(&self, name: &str) -> bool {
        self.conditions.iter().any(|c| match c {
            Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => {
                field.eq_ignore_ascii_case(name)
            }
            Condition::LengthRange { .. } => false,
        })
    }
}

/// `starts-with`; on `Content-Type` a comma-separated list, each of whose types must match.
fn starts_with(field: &str, value: &str, prefix: &str) -> bool {
    if field == "content-type" && value.contains(',') {
        return value.split(',').all(|t| t.trim().starts_with(prefix));
    }
    value.starts_with(prefix)
}

/// A condition as S3 quotes it: `["eq", "$key", "x"]`.
fn quote(items: &[&Value]) -> String {
    let items: Vec<String> = items.iter().map(|v| v.to_string()).collect();
    format!("[{}]", items.join(", "))
}

impl Condition {
    fn parse(raw: &Value) -> Result<Self, S3Error> {
        match raw {
            Value::Object(map) => {
                let mut entries = map.iter();
                let (Some((name, value)), None) = (entries.next(), entries.next()) else {
                    return Err(invalid(
                        "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.",
                    ));
                };
                let Value::String(v) = value else {
                    return Err(invalid("Invalid Simple-Condition: value must be a string."));
                };
                let reference = Value::String(format!("${name}"));
                Ok(Condition::Eq {
                    field: name.to_ascii_lowercase(),
                    value: v.clone(),
                    text: quote(&[&Value::String("eq".into()), &reference, value]),
                })
            }
            Value::Array(items) => Self::parse_list(items),
            _ => Err(invalid("Invalid condition test: must be a List or Object.")),
        }
    }

    fn parse_list(items: &[Value]) -> Result<Self, S3Error> {
        let Some(first) = items.first() else {
            return Err(invalid("Invalid Condition: missing operation identifier."));
        };
        let Value::String(op) = first else {
            return Err(invalid("Invalid JSON."));
        };
        let op = op.to_ascii_lowercase();
        if !matches!(op.as_str(), "eq" | "starts-with" | "content-length-range") {
            return Err(invalid(format!(
                "Invalid Condition: unknown operation '{op}'."
            )));
        }
        let [_, a, b] = items else {
            return Err(invalid(format!("Invalid {op}: wrong number of arguments.")));
        };
        let text = quote(&items.iter().collect::<Vec<_>>());
        if op == "content-length-range" {
            return Ok(Condition::LengthRange {
                min: length(a, &text)?,
                max: length(b, &text)?,
            });
        }
        let field = match a.as_str().and_then(|r| r.strip_prefix('$')) {
            Some(name) if !name.is_empty() => name.to_ascii_lowercase(),
            _ => return Err(denied(format!("Policy Condition failed: {text}"))),
        };
        let value = match b {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(invalid("Invalid JSON.")),
        };
        Ok(match op.as_str() {
            "eq" => Condition::Eq { field, value, text },
            _ => Condition::StartsWith {
                field,
                prefix: value,
                text,
            },
        })
    }
}

/// A bound of `content-length-range`: an integer, or a string holding one.
fn length(v: &Value, text: &str) -> Result<i64, S3Error> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| invalid("Invalid JSON.")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| denied(format!("Policy Condition failed: {text}"))),
        _ => Err(invalid("Invalid JSON.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(doc: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(doc)
    }

    fn policy(conditions: &str) -> Policy {
        let doc =
            format!(r#"{{"expiration": "2030-01-01T00:00:00.000Z", "conditions": {conditions}}}"#);
        Policy::parse(&encode(&doc)).expect("valid policy")
    }

    fn parse_error(doc: &str) -> (S3ErrorCode, String) {
        let e = Policy::parse(&encode(doc)).expect_err(doc);
        (e.code().clone(), e.message().unwrap_or_default().to_owned())
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-01-01 00:00 UTC)
    }

    fn check(p: &Policy, pairs: &[(&str, &str)]) -> Result<(), String> {
        p.check(&fields(pairs), "photos", now())
            .map_err(|e| format!("{} {}", e.code().as_str(), e.message().unwrap_or_default()))
    }

    #[test]
    fn conditions_in_both_forms() {
        let p = policy(
            r#"[{"bucket": "photos"}, ["eq", "$Key", "a.txt"], ["starts-with", "$Content-Type", "image/"], ["content-length-range", 1, "10"]]"#,
        );
        assert_eq!(
            p.conditions,
            [
                Condition::Eq {
                    field: "bucket".into(),
                    value: "photos".into(),
                    text: r#"["eq", "$bucket", "photos"]"#.into()
                },
                Condition::Eq {
                    field: "key".into(),
                    value: "a.txt".into(),
                    text: r#"["eq", "$Key", "a.txt"]"#.into()
                },
                Condition::StartsWith {
                    field: "content-type".into(),
                    prefix: "image/".into(),
                    text: r#"["starts-with", "$Content-Type", "image/"]"#.into()
                },
                Condition::LengthRange { min: 1, max: 10 },
            ]
        );
        assert_eq!(
            policy(r#"[["eq", "$success_action_status", 201]]"#).conditions[0],
            Condition::Eq {
                field: "success_action_status".into(),
                value: "201".into(),
                text: r#"["eq", "$success_action_status", 201]"#.into()
            }
        );
    }

    #[test]
    fn malformed_documents_get_aws_messages() {
        let bad = |doc: &str, message: &str| {
            assert_eq!(
                parse_error(doc),
                (
                    S3ErrorCode::InvalidPolicyDocument,
                    format!("Invalid Policy: {message}")
                ),
                "{doc}"
            );
        };
        bad("{not json", "Invalid JSON.");
        bad("[1, 2]", "Invalid JSON.");
        bad(
            r#"{"conditions": [{"bucket": "b"}]}"#,
            "Policy missing expiration.",
        );
        bad(
            r#"{"expiration": "2030-01-01 00:00:00 UTC", "conditions": [{"bucket": "b"}]}"#,
            "Invalid 'expiration' value: '2030-01-01 00:00:00 UTC'",
        );
        let future = r#""expiration": "2030-01-01T00:00:00Z""#;
        bad(&format!("{{{future}}}"), "Policy missing conditions.");
        bad(
            &format!(r#"{{{future}, "conditions": []}}"#),
            "Policy missing conditions.",
        );
        bad(
            &format!(r#"{{{future}, "conditions": {{"bucket": "b"}}}}"#),
            "Invalid 'conditions' value: must be a List.",
        );
        bad(
            &format!(r#"{{{future}, "conditions": [7]}}"#),
            "Invalid condition test: must be a List or Object.",
        );
        bad(
            &format!(r#"{{{future}, "conditions": [{{"bucket": "b", "acl": "private"}}]}}"#),
            "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.",
        );
        bad(
            &format!(r#"{{{future}, "conditions": [{{"bucket": 1}}]}}"#),
            "Invalid Simple-Condition: value must be a string.",
        );
        bad(
            &format!(r#"{{{future}, "conditions": [[]]}}"#),
            "Invalid Condition: missing operation identifier.",
        );
        bad(
            &format!(r#"{{{future}, "conditions": [["ends-with", "$key", "x"]]}}"#),
            "Invalid Condition: unknown operation 'ends-with'.",
        );
        bad(
            &format!(r#"{{{future}, "conditions": [["eq", "$key"]]}}"#),
            "Invalid eq: wrong number of arguments.",
        );
        let e = Policy::parse("%%% not base64 %%%").unwrap_err();
        assert_eq!(e.code(), &S3ErrorCode::InvalidPolicyDocument);
        let (code, message) = parse_error(&format!(
            r#"{{{future}, "conditions": [["eq", "key", "x"]]}}"#
        ));
        assert_eq!(code, S3ErrorCode::AccessDenied);
        assert_eq!(
            message,
            r#"Invalid according to Policy: Policy Condition failed: ["eq", "key", "x"]"#
        );
    }

    #[test]
    fn base64_padding_is_optional() {
        let doc = r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [{"bucket": "b"}]}"#;
        let unpadded = encode(doc).trim_end_matches('=').to_owned();
        assert!(Policy::parse(&unpadded).is_ok());
    }

    #[test]
    fn expiry_comes_first() {
        let doc = r#"{"expiration": "2025-12-31T23:59:59Z", "conditions": [["eq", "$key", "x"]]}"#;
        let p = Policy::parse(&encode(doc)).unwrap();
        assert_eq!(
            check(&p, &[("key", "other"), ("extra", "1")]),
            Err("AccessDenied Invalid according to Policy: Policy expired.".into())
        );
    }

    #[test]
    fn every_field_needs_a_condition_but_the_exempt_ones() {
        let p = policy(r#"[{"bucket": "photos"}, ["starts-with", "$key", ""]]"#);
        assert_eq!(
            check(&p, &[("key", "a"), ("x-amz-meta-color", "red"), ("Acl", "private")]),
            Err("AccessDenied Invalid according to Policy: Extra input fields: x-amz-meta-color, Acl".into())
        );
        let exempt = [
            ("key", "a"),
            ("Policy", "…"),
            ("x-amz-signature", "…"),
            ("AWSAccessKeyId", "…"),
            ("signature", "…"),
            ("x-ignore-tracking", "1"),
        ];
        assert_eq!(check(&p, &exempt), Ok(()));
    }

    #[test]
    fn conditions_compare_the_last_value_and_the_url_bucket() {
        let p = policy(r#"[{"bucket": "photos"}, ["eq", "$key", "x"]]"#);
        assert_eq!(check(&p, &[("key", "y"), ("KEY", "x")]), Ok(()));
        assert_eq!(
            check(&p, &[("key", "other.txt")]),
            Err(r#"AccessDenied Invalid according to Policy: Policy Condition failed: ["eq", "$key", "x"]"#.into())
        );
        let p = policy(r#"[{"bucket": "elsewhere"}, ["eq", "$key", "x"]]"#);
        assert_eq!(
            check(&p, &[("key", "x"), ("bucket", "elsewhere")]),
            Err(r#"AccessDenied Invalid according to Policy: Policy Condition failed: ["eq", "$bucket", "elsewhere"]"#.into())
        );
    }

    #[test]
    fn starts_with_and_missing_fields() {
        let p = policy(
            r#"[["starts-with", "$key", "uploads/"], ["starts-with", "$Content-Type", "image/"]]"#,
        );
        assert_eq!(
            check(
                &p,
                &[
                    ("key", "uploads/a"),
                    ("content-type", "image/png, image/gif")
                ]
            ),
            Ok(())
        );
        assert!(check(
            &p,
            &[
                ("key", "uploads/a"),
                ("content-type", "image/png, text/html")
            ]
        )
        .is_err());
        assert_eq!(
            check(&p, &[("key", "elsewhere/a"), ("content-type", "image/png")]),
            Err(r#"AccessDenied Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "uploads/"]"#.into())
        );
        let any = policy(r#"[["starts-with", "$key", ""], ["starts-with", "$content-type", ""]]"#);
        assert_eq!(check(&any, &[("key", "a"), ("content-type", "")]), Ok(()));
        assert!(
            check(&any, &[("key", "a")]).is_err(),
            "a condition on a field the form lacks fails, even one that accepts anything"
        );
    }

    #[test]
    fn length_ranges_are_left_to_the_upload() {
        let p = policy(r#"[["starts-with", "$key", ""], ["content-length-range", 5, 10]]"#);
        assert_eq!(check(&p, &[("key", "a")]), Ok(()));
        let (code, _) = parse_error(
            r#"{"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", 1.5, 10]]}"#,
        );
        assert_eq!(code, S3ErrorCode::InvalidPolicyDocument);
    }
}
