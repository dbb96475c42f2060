//! Stores on object storage: the options every request gets, and the errors a user can fix
//! (no bucket, no credentials, access denied, no answer) said as such.

use std::collections::HashMap;
use std::sync::{Arc, Once};

use datafusion::error::Result as DfResult;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use deltalake::ObjectStore;
use url::Url;

use super::{Location, Store};
use crate::error::Error;
use crate::schema::Table;

impl Store {
    /// Options for the object store: on S3, an endpoint that does not answer fails within
    /// seconds rather than after object_store's default three minutes of retries. Credentials,
    /// region and endpoint come from the standard AWS environment variables.
    pub(super) fn storage_options(&self) -> HashMap<String, String> {
        match &self.location {
            Location::Url(url) if url.scheme() != "file" => remote_options(),
            _ => HashMap::new(),
        }
    }

    /// An object-store error as a sentence that names the problem, when it is one a user can fix
    /// (no bucket, no credentials, access denied, no answer); otherwise the error as it is.
    pub fn explain(&self, table: Table, e: &dyn std::fmt::Display) -> Error {
        let message = e.to_string();
        match self.unreachable_because(&message) {
            Some(why) => Error::Unreachable { store: self.to_string(), message: why },
            None => Error::Store { store: self.to_string(), table: table.name(), message },
        }
    }

    fn unreachable_because(&self, message: &str) -> Option<String> {
        let Location::Url(url) = &self.location else { return None };
        if url.scheme() == "file" {
            return None;
        }
        let bucket = url.host_str().unwrap_or_default();
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .map(|e| format!("the endpoint {e}"))
            .unwrap_or_else(|_| "the AWS S3 endpoint".to_string());
        let lower = message.to_lowercase();
        Some(if message.contains("NoSuchBucket") {
            format!("bucket `{bucket}` does not exist at {endpoint}")
        } else if message.contains("169.254.169.254")
            || lower.contains("no credentials")
            || lower.contains("credentials not")
        {
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), \
             or run where an instance role provides them"
                .to_string()
        } else if message.contains("AccessDenied") || message.contains("403 Forbidden") {
            format!(
                "access denied to s3://{bucket}{}: the credentials lack permission (s3:ListBucket, s3:GetObject, s3:PutObject)",
                url.path()
            )
        } else if message.contains("InvalidAccessKeyId") || message.contains("SignatureDoesNotMatch") {
            "the AWS credentials were refused: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".to_string()
        } else if lower.contains("error sending request") || lower.contains("timed out") {
            // object_store does not say why a request could not be sent; how long it took does.
            match request_seconds(message) {
                Some(s) if s >= 4.0 => format!("{endpoint} did not answer within {s:.0} s"),
                _ => format!("cannot connect to {endpoint} (connection refused, or no route to it)"),
            }
        } else {
            return None;
        })
    }
}

/// The options of every object-store client on S3 (see [`Store::storage_options`]).
fn remote_options() -> HashMap<String, String> {
    [("connect_timeout", "5s"), ("timeout", "30s"), ("max_retries", "2"), ("retry_timeout", "10s")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Lets delta-rs open `s3://` locations (once per process).
pub(super) fn register_handlers() {
    static S3: Once = Once::new();
    S3.call_once(|| deltalake::aws::register_handlers(None));
}

/// The object stores of a process that reads files by URL without opening a store first (a
/// cluster's scheduler and executors): local files, and each S3 bucket the first time a URL
/// names it, built as a store's own client is (delta-rs's S3 client, this process's AWS
/// environment for credentials, region and endpoint, the same timeouts). Credentials never
/// travel in a plan: each process brings its own.
#[derive(Debug, Default)]
pub struct ObjectStores {
    known: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for ObjectStores {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.known.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        self.known.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> DfResult<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.known.get_store(url) {
            return Ok(store);
        }
        match (url.scheme(), url.host_str()) {
            ("s3" | "s3a", Some(bucket)) if !bucket.is_empty() => {
                register_handlers();
                let root = Url::parse(&format!("{}://{bucket}", url.scheme()))
                    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
                let store = deltalake::logstore::store_for(&root, remote_options())?;
                self.known.register_store(&root, store.clone());
                Ok(store)
            }
            _ => self.known.get_store(url),
        }
    }
}

/// How long object_store says a failed request took ("Error performing GET ... in 30.0s").
fn request_seconds(message: &str) -> Option<f64> {
    message.split(" in ").skip(1).find_map(|rest| {
        let token = rest.split([' ', ',']).next()?;
        match token.strip_suffix("ms") {
            Some(ms) => ms.parse::<f64>().ok().map(|ms| ms / 1000.0),
            None => token.strip_suffix('s')?.parse().ok(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_of_a_failed_request_is_read_from_its_message() {
        let slow = "Error performing GET http://127.0.0.1:1/b/_last_checkpoint in 30.00161108s - HTTP error: error sending request";
        assert_eq!(request_seconds(slow), Some(30.00161108));
        let fast = "Error performing GET http://h/x in 258.972534ms, after 2 retries - HTTP error";
        assert_eq!(request_seconds(fast), Some(0.258972534));
        assert_eq!(request_seconds("no time here"), None);
    }
}
