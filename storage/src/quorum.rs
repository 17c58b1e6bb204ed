//! Choosing the answer that enough drives agree on. Pure, so it is tested exhaustively.

/// The value a quorum of drives agrees on and which drives agree with it.
#[derive(Debug, PartialEq)]
pub struct Agreement<T> {
    /// `None` when a quorum says the thing does not exist.
    pub value: Option<T>,
    pub agree: Vec<bool>,
}

/// Resolves per-drive answers: `None` = the drive did not answer, `Some(None)` = it has nothing,
/// `Some(Some(v))` = it has `v`. The largest group wins if it reaches `quorum`; ties go to a
/// present value over absence (never hide data that might be acknowledged), then to the newer.
/// Returns the number of drives in the largest group on failure.
pub fn resolve<T: PartialEq + Clone>(
    answers: &[Option<Option<T>>],
    quorum: usize,
    newer: impl Fn(&T, &T) -> bool,
) -> Result<Agreement<T>, usize> {
    let mut groups: Vec<(Option<T>, usize)> = Vec::new();
    for answer in answers.iter().flatten() {
        match groups.iter_mut().find(|(v, _)| v == answer) {
            Some((_, n)) => *n += 1,
            None => groups.push((answer.clone(), 1)),
        }
    }
    let mut best: Option<&(Option<T>, usize)> = None;
    for g in &groups {
        best = match best {
            None => Some(g),
            Some(b) if g.1 > b.1 => Some(g),
            Some(b) if g.1 == b.1 => match (&g.0, &b.0) {
                (Some(_), None) => Some(g),
                (Some(x), Some(y)) if newer(x, y) => Some(g),
                _ => Some(b),
            },
            keep => keep,
        };
    }
    match best {
        Some((value, n)) if *n >= quorum => Ok(Agreement {
            agree: answers.iter().map(|a| a.as_ref() == Some(value)).collect(),
            value: value.clone(),
        }),
        Some((_, n)) => Err(*n),
        None => Err(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn newer(a: &u32, b: &u32) -> bool {
        a > b
    }

    #[test]
    fn majority_wins_and_marks_agreeing_drives() {
        let answers = [Some(Some(5)), Some(Some(5)), Some(Some(4)), None];
        let a = resolve(&answers, 2, newer).unwrap();
        assert_eq!(a.value, Some(5));
        assert_eq!(a.agree, vec![true, true, false, false]);
    }

    #[test]
    fn absence_can_win() {
        let answers = [Some(None), Some(None), Some(None), Some(Some(1))];
        let a = resolve(&answers, 2, newer).unwrap();
        assert_eq!(a.value, None);
        assert_eq!(a.agree, vec![true, true, true, false]);
    }

    #[test]
    fn ties_prefer_presence_then_newer() {
        let answers = [Some(None), Some(None), Some(Some(1)), Some(Some(1))];
        assert_eq!(resolve(&answers, 2, newer).unwrap().value, Some(1));
        let answers = [Some(Some(1)), Some(Some(1)), Some(Some(2)), Some(Some(2))];
        assert_eq!(resolve(&answers, 2, newer).unwrap().value, Some(2));
    }

    #[test]
    fn no_quorum_is_an_error() {
        let answers = [Some(Some(1)), None, None, Some(Some(2))];
        assert_eq!(resolve(&answers, 2, newer), Err(1));
        let none: [Option<Option<u32>>; 2] = [None, None];
        assert_eq!(resolve(&none, 1, newer), Err(0));
    }
}
