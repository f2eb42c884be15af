//! The words of the TLS settings, below the config that validates them and the server
//! configurations built from them: Redis's `tls-auth-clients` policy, valkey's
//! `tls-auth-clients-user`, `tls-protocols`, and the error every TLS setting reports.
//!
//! Pure parsing: no file, no socket, no config.

use std::path::PathBuf;

/// Whether clients must present a certificate signed by the CA bundle (Redis's
/// `tls-auth-clients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client without a valid certificate is refused during the handshake.
    Required,
    /// No certificate is asked for.
    Off,
    /// A certificate is asked for; one that is sent must be valid, none is fine too.
    Optional,
}

impl ClientAuth {
    /// Redis's spellings: `yes`, `no`, `optional` (any case).
    pub fn parse(text: &str) -> Option<ClientAuth> {
        match text.to_ascii_lowercase().as_str() {
            "yes" => Some(ClientAuth::Required),
            "no" => Some(ClientAuth::Off),
            "optional" => Some(ClientAuth::Optional),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ClientAuth::Required => "yes",
            ClientAuth::Off => "no",
            ClientAuth::Optional => "optional",
        }
    }
}

/// Which field of a client certificate names its ACL user (valkey's
/// `tls-auth-clients-user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateUser {
    Off,
    CommonName,
}

impl CertificateUser {
    /// `off` or `CN` (any case).
    pub fn parse(text: &str) -> Option<CertificateUser> {
        match text.to_ascii_lowercase().as_str() {
            "off" => Some(CertificateUser::Off),
            "cn" => Some(CertificateUser::CommonName),
            _ => None,
        }
    }
}

/// The subject common name of a DER certificate (the first, when several).
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let name = cert.subject().iter_common_name().next()?;
    name.as_str().ok().map(str::to_owned)
}

/// Why TLS settings could not be turned into a server configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{setting}: cannot read {path}: {source}")]
    Pem {
        setting: &'static str,
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{setting}: {path} holds no certificate")]
    NoCertificate {
        setting: &'static str,
        path: PathBuf,
    },
    #[error("{setting}: {message}")]
    Setting {
        setting: &'static str,
        message: String,
    },
    #[error("tls.ca_cert_file: {path}: {message}")]
    CaBundle { path: PathBuf, message: String },
    #[error("tls.cert_file and tls.key_file: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The protocol versions named by `protocols` (Redis's `tls-protocols`: `TLSv1.2`,
/// `TLSv1.3`, separated by spaces; empty = both).
pub fn protocol_versions(
    text: &str,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
    let mut versions = Vec::new();
    for word in text.split_whitespace() {
        let version = match word.to_ascii_lowercase().as_str() {
            "tlsv1.2" => &rustls::version::TLS12,
            "tlsv1.3" => &rustls::version::TLS13,
            _ => {
                return Err(TlsError::Setting {
                    setting: "tls.protocols",
                    message: format!("{word:?} is not one of TLSv1.2, TLSv1.3"),
                })
            }
        };
        if !versions.contains(&version) {
            versions.push(version);
        }
    }
    if versions.is_empty() {
        versions = vec![&rustls::version::TLS12, &rustls::version::TLS13];
    }
    Ok(versions)
}
