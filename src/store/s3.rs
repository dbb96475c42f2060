//! Stores on object storage: the options every request gets, and the errors a user can fix
//! (no bucket, no credentials, access denied, no answer) said as such.

use std::collections::HashMap;

use super::{Location, Store};
use crate::error::Error;
use crate::schema::Table;

impl Store {
    /// Options for the object store: on S3, an endpoint that does not answer fails within
    /// seconds rather than after object_store's default three minutes of retries. Credentials,
    /// region and endpoint come from the standard AWS environment variables.
    pub(super) fn storage_options(&self) -> HashMap<String, String> {
        match &self.location {
            Location::Url(url) if url.scheme() != "file" => {
                [("connect_timeout", "5s"), ("timeout", "30s"), ("max_retries", "2"), ("retry_timeout", "10s")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }
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
