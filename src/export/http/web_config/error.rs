//! Why a web config did not load: each error names the key (and, for the file's format, the
//! line) it is about. `Display` says this level; `source()` gives the cause below it (print
//! with [`crate::remote::error_chain`]).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file itself cannot be read.
    #[error("{}: cannot read the web config", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Something wrong in this file.
    #[error("{}", path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<WebConfigError>,
    },
    /// Not YAML, or not the format: a key it has not (or that is misspelt), a value of the
    /// wrong type. The parser's message names the key and its line.
    #[error(transparent)]
    Format(#[from] serde_yaml_ng::Error),
    /// A value the key does not take, or keys that do not go together.
    #[error("{key}: {why}")]
    Invalid { key: String, why: String },
    /// A file the config names cannot be read.
    #[error("{key}: {}", path.display())]
    ReadNamed {
        key: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// PEM that does not parse, or holds no certificate or no key where one is needed.
    #[error("{what}: {why}")]
    Pem {
        what: String,
        why: &'static str,
        #[source]
        source: Option<rustls_pki_types::pem::Error>,
    },
    /// rustls refused what the file describes (the certificates, the versions, the client
    /// certificate verifier).
    #[error("{what}")]
    Tls {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl WebConfigError {
    pub(super) fn invalid(key: impl Into<String>, why: impl Into<String>) -> WebConfigError {
        WebConfigError::Invalid {
            key: key.into(),
            why: why.into(),
        }
    }

    /// rustls' refusal of `what`, for `map_err`.
    pub(super) fn tls<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
        what: impl Into<String>,
    ) -> impl FnOnce(E) -> WebConfigError {
        let what = what.into();
        move |e| WebConfigError::Tls {
            what,
            source: e.into(),
        }
    }
}
