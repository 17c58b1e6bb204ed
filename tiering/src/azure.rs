//! Azure Blob tiers through `object_store`'s Azure client (account key or SAS): block blobs,
//! put in one request when small, as staged blocks and a block list when large, with the
//! tier's access tier (`x-ms-access-tier`).

use crate::config::{resolve_secret, TierConfig};
use crate::remote::{next_part, ByteStream, RemoteHead, RemoteTier, TierError, Written};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use object_store::azure::{split_sas, MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload, RetryConfig, WriteMultipart,
};
use std::time::Duration;

/// The block size of large transitions; at most `BLOCKS_IN_FLIGHT` are buffered at once.
pub const BLOCK_SIZE: usize = 8 << 20;
const BLOCKS_IN_FLIGHT: usize = 2;

pub struct AzureTier {
    store: MicrosoftAzure,
    prefix: String,
    attributes: Attributes,
}

impl AzureTier {
    pub fn new(cfg: &TierConfig) -> Result<Self, String> {
        let account = cfg.account.clone().unwrap_or_default();
        let endpoint = cfg
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
        let mut builder = MicrosoftAzureBuilder::new()
            .with_account(account)
            .with_container_name(&cfg.bucket)
            .with_endpoint(endpoint.trim_end_matches('/').to_owned())
            // Replaces all client options: set first. The timeout covers a whole block.
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(Duration::from_secs(300))
                    .with_connect_timeout(Duration::from_secs(10)),
            )
            .with_allow_http(endpoint.starts_with("http://"))
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..Default::default()
            });
        if let Some(key) = &cfg.key {
            builder = builder.with_access_key(resolve_secret(key)?);
        }
        if let Some(sas) = &cfg.sas {
            let sas = resolve_secret(sas)?;
            let pairs = split_sas(sas.trim_start_matches('?')).map_err(|e| format!("SAS: {e}"))?;
            builder = builder.with_sas_authorization(pairs);
        }
        let mut attributes = Attributes::new();
        if let Some(class) = &cfg.storage_class {
            attributes.insert(Attribute::StorageClass, class.clone().into());
        }
        Ok(Self {
            store: builder.build().map_err(|e| e.to_string())?,
            prefix: cfg.prefix.clone(),
            attributes,
        })
    }

    fn path(&self, key: &str) -> Path {
        Path::from(format!("{}{key}", self.prefix))
    }
}

#[async_trait]
impl RemoteTier for AzureTier {
    async fn put(&self, key: &str, mut body: ByteStream, size: u64) -> Result<Written, TierError> {
        let path = self.path(key);
        let done = if size <= BLOCK_SIZE as u64 {
            let bytes = next_part(&mut body, &mut Bytes::new(), size as usize).await?;
            if bytes.len() as u64 != size {
                return Err(TierError::Source(format!(
                    "the version has {} bytes, not {size}",
                    bytes.len()
                )));
            }
            let opts = PutOptions {
                attributes: self.attributes.clone(),
                ..Default::default()
            };
            self.store
                .put_opts(&path, PutPayload::from(bytes), opts)
                .await
                .map_err(classify)?
        } else {
            let opts = PutMultipartOptions {
                attributes: self.attributes.clone(),
                ..Default::default()
            };
            let upload = self
                .store
                .put_multipart_opts(&path, opts)
                .await
                .map_err(classify)?;
            // Azure takes at most 50,000 blocks: larger blocks for the largest objects.
            let block = (size.div_ceil(50_000).div_ceil(1 << 20) << 20).max(BLOCK_SIZE as u64);
            let mut writer = WriteMultipart::new_with_chunk_size(upload, block as usize);
            let mut sent = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = writer.abort().await;
                        return Err(e);
                    }
                };
                sent += chunk.len() as u64;
                if let Err(e) = writer.wait_for_capacity(BLOCKS_IN_FLIGHT).await {
                    return Err(classify(e));
                }
                writer.put(chunk);
            }
            if sent != size {
                let _ = writer.abort().await;
                return Err(TierError::Source(format!(
                    "the version has {sent} bytes, not {size}"
                )));
            }
            writer.finish().await.map_err(classify)?
        };
        Ok(Written {
            etag: done.e_tag,
            md5: None,
        })
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<ByteStream, TierError> {
        let got = self
            .store
            .get_opts(
                &self.path(key),
                GetOptions::new().with_range(Some(GetRange::Bounded(start..end))),
            )
            .await
            .map_err(classify)?;
        Ok(got.into_stream().map(|c| c.map_err(classify)).boxed())
    }

    async fn head(&self, key: &str) -> Result<RemoteHead, TierError> {
        let meta = self.store.head(&self.path(key)).await.map_err(classify)?;
        Ok(RemoteHead {
            size: meta.size,
            etag: meta.e_tag,
        })
    }

    async fn delete(&self, key: &str) -> Result<(), TierError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }
}

fn classify(e: object_store::Error) -> TierError {
    let text = format!("Azure: {e}");
    match &e {
        object_store::Error::NotFound { .. } => TierError::NotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => TierError::Refused(text),
        _ if text.contains("403") || text.contains("AuthorizationFailure") => {
            TierError::Refused(text)
        }
        _ => TierError::Unavailable(text),
    }
}
