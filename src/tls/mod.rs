//! TLS settings turned into rustls server configurations: the certificate chain, the private
//! key and the client CA bundle read from PEM files, the client-authentication policy
//! (Redis's `tls-auth-clients yes|no|optional`), the protocol versions, and the swap of all of
//! them on SIGHUP or `CONFIG SET tls-*`.
//!
//! It never touches a socket and never holds its lock while a handshake runs: a new
//! connection takes an `Arc` of the current [`rustls::ServerConfig`] and keeps it, so a reload
//! changes what the next connection gets and leaves the open ones as they are. A reload that
//! fails (a missing file, a key that does not match) changes nothing.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::TlsSection;

pub mod settings;
pub use settings::{common_name, protocol_versions, CertificateUser, ClientAuth, TlsError};

/// The crypto provider: aws-lc-rs (see the commit that brought rustls in for why).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read_certs(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |source| TlsError::Pem {
        setting,
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            setting,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Builds the rustls configuration `section` describes, reading its files now.
pub fn server_config(section: &TlsSection) -> Result<ServerConfig, TlsError> {
    let required = |setting: &'static str, path: &Path| {
        if path.as_os_str().is_empty() {
            Err(TlsError::Setting {
                setting,
                message: "required when a TLS port or http.tls is set".into(),
            })
        } else {
            Ok(())
        }
    };
    required("tls.cert_file", &section.cert_file)?;
    required("tls.key_file", &section.key_file)?;
    CertificateUser::parse(&section.auth_clients_user).ok_or_else(|| TlsError::Setting {
        setting: "tls.auth_clients_user",
        message: format!("{:?} is not one of off, CN", section.auth_clients_user),
    })?;
    let auth = ClientAuth::parse(&section.auth_clients).ok_or_else(|| TlsError::Setting {
        setting: "tls.auth_clients",
        message: format!("{:?} is not one of yes, no, optional", section.auth_clients),
    })?;
    let versions = protocol_versions(&section.protocols)?;
    let certs = read_certs("tls.cert_file", &section.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&section.key_file).map_err(|source| TlsError::Pem {
        setting: "tls.key_file",
        path: section.key_file.clone(),
        source,
    })?;
    let provider = provider();
    let builder =
        ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions)?;
    let builder = match auth {
        ClientAuth::Off => builder.with_no_client_auth(),
        ClientAuth::Required | ClientAuth::Optional => {
            if section.ca_cert_file.as_os_str().is_empty() {
                return Err(TlsError::Setting {
                    setting: "tls.ca_cert_file",
                    message: format!(
                        "required when tls.auth_clients is {:?} (client certificates are \
                         checked against it)",
                        auth.name()
                    ),
                });
            }
            let ca_error = |message: String| TlsError::CaBundle {
                path: section.ca_cert_file.clone(),
                message,
            };
            let mut roots = RootCertStore::empty();
            for cert in read_certs("tls.ca_cert_file", &section.ca_cert_file)? {
                roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder
                .with_client_cert_verifier(verifier.build().map_err(|e| ca_error(e.to_string()))?)
        }
    };
    Ok(builder.with_single_cert(certs, key)?)
}

/// The TLS configuration new connections get, and the settings it was built from.
pub struct TlsState {
    /// Taken for a moment per accepted connection and per reload; never across I/O.
    current: parking_lot::RwLock<Arc<ServerConfig>>,
    settings: parking_lot::Mutex<TlsSection>,
}

impl TlsState {
    /// The TLS state for `section`, or none when no TLS port is set.
    pub fn for_ports(
        section: &TlsSection,
        any_tls_port: bool,
    ) -> Result<Option<TlsState>, TlsError> {
        if !any_tls_port {
            return Ok(None);
        }
        let config = server_config(section)?;
        Ok(Some(TlsState {
            current: parking_lot::RwLock::new(Arc::new(config)),
            settings: parking_lot::Mutex::new(section.clone()),
        }))
    }

    /// The configuration for a connection accepted now.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.current.read().clone()
    }

    /// Which certificate field names a client's ACL user, as now set.
    pub fn certificate_user(&self) -> CertificateUser {
        CertificateUser::parse(&self.settings.lock().auth_clients_user)
            .unwrap_or(CertificateUser::Off)
    }

    /// The settings in effect (after any reload or `CONFIG SET`).
    pub fn settings(&self) -> TlsSection {
        self.settings.lock().clone()
    }

    /// Reads the files of `section` again and, when they make a valid configuration, hands
    /// it to every connection accepted from now on. On an error nothing changes.
    pub fn reload(&self, section: &TlsSection) -> Result<(), TlsError> {
        let config = Arc::new(server_config(section)?);
        *self.settings.lock() = section.clone();
        *self.current.write() = config;
        Ok(())
    }

    /// [`reload`](Self::reload) with one setting changed (`CONFIG SET tls-*`): the current
    /// settings, edited by `edit`, are applied as a whole or not at all.
    pub fn update(&self, edit: impl FnOnce(&mut TlsSection)) -> Result<(), TlsError> {
        let mut section = self.settings();
        edit(&mut section);
        self.reload(&section)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_auth_takes_redis_spellings() {
        assert_eq!(ClientAuth::parse("YES"), Some(ClientAuth::Required));
        assert_eq!(ClientAuth::parse("no"), Some(ClientAuth::Off));
        assert_eq!(ClientAuth::parse("optional"), Some(ClientAuth::Optional));
        assert_eq!(ClientAuth::parse("maybe"), None);
    }

    #[test]
    fn protocols_are_parsed_and_checked() {
        assert_eq!(protocol_versions("").unwrap().len(), 2);
        assert_eq!(
            protocol_versions("TLSv1.3").unwrap(),
            vec![&rustls::version::TLS13]
        );
        assert_eq!(protocol_versions("tlsv1.2 TLSv1.2").unwrap().len(), 1);
        assert!(protocol_versions("TLSv1.1").is_err());
    }

    #[test]
    fn missing_files_are_named_in_the_error() {
        let section = TlsSection {
            cert_file: "/nonexistent/cert.pem".into(),
            key_file: "/nonexistent/key.pem".into(),
            auth_clients: "no".into(),
            ..TlsSection::default()
        };
        let err = server_config(&section).unwrap_err().to_string();
        assert!(
            err.contains("tls.cert_file") && err.contains("/nonexistent/cert.pem"),
            "{err}"
        );
        let err = server_config(&TlsSection::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls.cert_file"), "{err}");
    }
}
