//! S3 Object Lock: where the bucket offers it, every object is locked until its retention date
//! (compliance mode by default), so that not even the bucket's owner can delete it earlier.
//!
//! object_store has no call for these S3 requests, so they are made here as presigned URLs
//! (object_store builds and signs them, endpoint and addressing style included) sent through
//! object_store's own HTTP client. An object is locked after its create-only write and before
//! the write is acknowledged, whether the write created it or found it there: every object a
//! client was told is stored is locked. Removal deletes each version of the key, which a lock
//! still in force makes the store refuse.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use md5::Digest;
use object_store::aws::AmazonS3;
use object_store::client::{HttpClient, HttpConnector, HttpRequestBody, ReqwestConnector};
use object_store::path::Path;
use object_store::signer::{SignedUrlOptions, Signer};

use super::ArchiveError;

/// What the store offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockSupport {
    /// A local directory: no lock of its own.
    NotS3,
    /// An S3 bucket without Object Lock.
    NotEnabled,
    /// An S3 bucket with Object Lock enabled.
    Enabled,
}

/// For an object's key, the instant (`YYYY-MM-DDTHH:MM:SSZ`, whole seconds: S3 servers differ
/// in the forms they read) until which it is locked.
pub type RetainUntil = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// An S3 bucket's lock requests.
#[derive(Clone)]
pub struct S3Lock {
    s3: Arc<AmazonS3>,
    http: HttpClient,
}

/// The lock applied to new objects.
#[derive(Clone)]
pub struct ObjectLock {
    s3: S3Lock,
    /// COMPLIANCE or GOVERNANCE.
    mode: &'static str,
    until: RetainUntil,
}

fn failed(key: &str, what: &str, detail: String) -> ArchiveError {
    ArchiveError::Lock {
        key: key.to_owned(),
        what: what.to_owned(),
        detail,
    }
}

impl S3Lock {
    pub fn new(s3: Arc<AmazonS3>) -> Result<S3Lock, ArchiveError> {
        let http = ReqwestConnector::default()
            .connect(&object_store::ClientOptions::new().with_allow_http(true))
            .map_err(|source| ArchiveError::Open {
                url: "S3 lock client".into(),
                source,
            })?;
        Ok(S3Lock { s3, http })
    }

    /// Sends a presigned request; answers the status and the body.
    async fn send(
        &self,
        method: http::Method,
        key: &Path,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<(u16, String), String> {
        let mut options = SignedUrlOptions::default().with_query(query.iter().copied());
        let md5 = body
            .as_ref()
            .map(|b| base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(b)));
        if let Some(md5) = &md5 {
            // S3 requires a checksum of a retention body; signing it binds it to the URL.
            let value = http::HeaderValue::from_str(md5).map_err(|e| e.to_string())?;
            options =
                options.with_signed_header(http::HeaderName::from_static("content-md5"), value);
        }
        let url = self
            .s3
            .signed_url_opts(method.clone(), key, Duration::from_secs(300), &options)
            .await
            .map_err(|e| e.to_string())?;
        let mut request = http::Request::builder().method(method).uri(url.as_str());
        if let Some(md5) = &md5 {
            request = request.header("content-md5", md5);
        }
        let request = request
            .body(HttpRequestBody::from(body.unwrap_or_default()))
            .map_err(|e| e.to_string())?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response
            .into_body()
            .bytes()
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| e.to_string())?;
        Ok((status, text))
    }

    /// Whether the bucket has Object Lock enabled.
    pub async fn support(&self) -> Result<LockSupport, ArchiveError> {
        let (status, body) = self
            .send(
                http::Method::GET,
                &Path::from(""),
                &[("object-lock", "")],
                None,
            )
            .await
            .map_err(|e| failed("", "read the bucket's Object Lock configuration", e))?;
        match status {
            200 if body.contains("<ObjectLockEnabled>Enabled</ObjectLockEnabled>") => {
                Ok(LockSupport::Enabled)
            }
            200 => Ok(LockSupport::NotEnabled),
            404 if body.contains("ObjectLockConfigurationNotFound") => Ok(LockSupport::NotEnabled),
            _ => Err(failed(
                "",
                "read the bucket's Object Lock configuration",
                format!("{status} {body}"),
            )),
        }
    }

    /// Locks the current version of `key` until `until`.
    async fn retain(&self, key: &Path, mode: &str, until: &str) -> Result<(), ArchiveError> {
        let body = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{mode}</Mode>\
             <RetainUntilDate>{until}</RetainUntilDate></Retention>"
        );
        let (status, text) = self
            .send(
                http::Method::PUT,
                key,
                &[("retention", "")],
                Some(body.into_bytes()),
            )
            .await
            .map_err(|e| failed(key.as_ref(), "lock", e))?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(failed(key.as_ref(), "lock", format!("{status} {text}")))
        }
    }

    /// Deletes every version of `key` (and every delete marker): on a versioned bucket a plain
    /// delete would only hide the data. A version still locked is refused by the store.
    pub async fn remove_versions(&self, key: &Path) -> Result<(), ArchiveError> {
        let (status, listing) = self
            .send(
                http::Method::GET,
                &Path::from(""),
                &[("versions", ""), ("prefix", key.as_ref())],
                None,
            )
            .await
            .map_err(|e| failed(key.as_ref(), "list versions", e))?;
        if status != 200 {
            return Err(failed(
                key.as_ref(),
                "list versions",
                format!("{status} {listing}"),
            ));
        }
        for version in versions_of(&listing, key.as_ref())
            .map_err(|e| failed(key.as_ref(), "list versions", e))?
        {
            let (status, text) = self
                .send(http::Method::DELETE, key, &[("versionId", &version)], None)
                .await
                .map_err(|e| failed(key.as_ref(), "delete a version", e))?;
            if !(200..300).contains(&status) {
                return Err(failed(
                    key.as_ref(),
                    "delete a version",
                    format!("{status} {text}"),
                ));
            }
        }
        Ok(())
    }
}

impl ObjectLock {
    pub fn new(s3: S3Lock, compliance: bool, until: RetainUntil) -> ObjectLock {
        ObjectLock {
            s3,
            mode: if compliance {
                "COMPLIANCE"
            } else {
                "GOVERNANCE"
            },
            until,
        }
    }

    pub async fn apply(&self, key: &Path) -> Result<(), ArchiveError> {
        let until = (self.until)(key.as_ref());
        self.s3.retain(key, self.mode, &until).await
    }
}

/// The version ids (and delete-marker ids) of exactly `key` in a ListObjectVersions answer.
fn versions_of(listing: &str, key: &str) -> Result<Vec<String>, String> {
    let doc = roxmltree::Document::parse(listing).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for node in doc
        .descendants()
        .filter(|n| matches!(n.tag_name().name(), "Version" | "DeleteMarker"))
    {
        let child = |name: &str| {
            node.children()
                .find(|c| c.tag_name().name() == name)
                .and_then(|c| c.text())
                .unwrap_or("")
                .to_owned()
        };
        if child("Key") == key {
            out.push(child("VersionId"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::versions_of;

    #[test]
    fn only_the_keys_own_versions() {
        let listing = r#"<?xml version="1.0"?>
<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Version><Key>a/b.dcm</Key><VersionId>v1</VersionId></Version>
  <Version><Key>a/b.dcm.x</Key><VersionId>v2</VersionId></Version>
  <DeleteMarker><Key>a/b.dcm</Key><VersionId>m1</VersionId></DeleteMarker>
</ListVersionsResult>"#;
        assert_eq!(versions_of(listing, "a/b.dcm").unwrap(), ["v1", "m1"]);
        assert!(versions_of("not xml", "a").is_err());
    }
}
