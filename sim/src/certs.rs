//! Certificates (docs/wechatpay-v2.md §3, §8.5): a CA, the simulator's server certificate and the merchant's
//! API client certificate, generated with rcgen on first start into the certificate directory
//! and reused afterwards.
//!
//! Files (the merchant ones carry WeChat's own file names, so paydesk's configuration looks
//! the same as in production):
//!
//! | file | what |
//! |---|---|
//! | `ca.pem`, `ca-key.pem` | the simulator CA (trust `ca.pem` as an extra root) |
//! | `server.pem`, `server-key.pem` | the HTTPS server certificate (`localhost`, `127.0.0.1`, `::1`) |
//! | `apiclient_cert.pem`, `apiclient_key.pem` | the merchant client certificate and key |
//! | `apiclient_cert.p12` | the same as PKCS#12, password = the mch_id (§3) |
//!
//! A second simulator started on the same directory at the same moment waits for the first
//! one's files instead of writing a mixed set (a `.generating` directory is the lock).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

/// Where the generated certificate files are (docs/wechatpay-v2.md §3). Paydesk's configuration points at
/// these paths: `ca` as the extra trusted root, `client_cert` + `client_key` (or
/// `client_p12` with the mch_id as password) as the merchant identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertPaths {
    /// The directory holding all of them.
    pub dir: PathBuf,
    /// `ca.pem`: the simulator CA certificate.
    pub ca: PathBuf,
    /// `ca-key.pem`: the CA's private key (lets tests issue more certificates).
    pub ca_key: PathBuf,
    /// `server.pem`: the HTTPS server certificate.
    pub server_cert: PathBuf,
    /// `server-key.pem`: its key.
    pub server_key: PathBuf,
    /// `apiclient_cert.pem`: the merchant client certificate.
    pub client_cert: PathBuf,
    /// `apiclient_key.pem`: the merchant client key (PKCS#8).
    pub client_key: PathBuf,
    /// `apiclient_cert.p12`: the merchant identity as PKCS#12, password = mch_id.
    pub client_p12: PathBuf,
}

impl CertPaths {
    /// The file names inside `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        CertPaths {
            ca: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("apiclient_cert.pem"),
            client_key: dir.join("apiclient_key.pem"),
            client_p12: dir.join("apiclient_cert.p12"),
            dir,
        }
    }

    fn pem_files(&self) -> [&Path; 6] {
        [
            &self.ca,
            &self.ca_key,
            &self.server_cert,
            &self.server_key,
            &self.client_cert,
            &self.client_key,
        ]
    }

    fn complete(&self) -> bool {
        self.pem_files().iter().all(|p| p.is_file())
    }
}

/// Make sure the certificate set exists in `dir` (generating it on first start) and write the
/// PKCS#12 file for `mch_id` (its password). Returns the paths.
pub fn ensure(dir: &Path, mch_id: &str) -> anyhow::Result<CertPaths> {
    let paths = CertPaths::in_dir(dir);
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the certificate directory {}", dir.display()))?;
    if !paths.complete() || !client_cert_names(&paths, mch_id) {
        generate_locked(&paths, mch_id)?;
    }
    write_p12(&paths, mch_id)?;
    Ok(paths)
}

fn generate_locked(paths: &CertPaths, mch_id: &str) -> anyhow::Result<()> {
    let lock = paths.dir.join(".generating");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match std::fs::create_dir(&lock) {
            Ok(()) => {
                let result = if paths.complete() && client_cert_names(paths, mch_id) {
                    Ok(())
                } else {
                    generate(paths, mch_id)
                };
                let _ = std::fs::remove_dir(&lock);
                return result;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if Instant::now() > deadline {
                    bail!(
                        "{} is held by another simulator for too long; remove it if it is stale",
                        lock.display()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
                if paths.complete() && !lock.exists() {
                    return Ok(());
                }
            }
            Err(e) => return Err(e).context("cannot lock the certificate directory"),
        }
    }
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "paydesk-sim CA");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "paydesk-sim");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, 3650);
    Ok(params)
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
}

/// Whether the merchant certificate in `paths` names `mch_id` in its subject, as WeChat
/// Pay's merchant certificates do (a set generated for another merchant number is replaced).
fn client_cert_names(paths: &CertPaths, mch_id: &str) -> bool {
    wxpay::MerchantIdentity::from_pem_files(&paths.client_cert, &paths.client_key)
        .and_then(|identity| identity.certificate_info())
        .is_ok_and(|info| info.subject.contains(&format!("CN={mch_id}")))
}

/// The merchant certificate's parameters: subject `CN=<mch_id>, OU=Tenpay.com CA Center`
/// like WeChat Pay's, client authentication, valid from `not_before` to `not_after`.
fn merchant_params(
    mch_id: &str,
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
) -> anyhow::Result<CertificateParams> {
    let mut client = CertificateParams::new(Vec::<String>::new())?;
    client.distinguished_name.push(DnType::CommonName, mch_id);
    client
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "Tenpay.com CA Center");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client.not_before = not_before;
    client.not_after = not_after;
    Ok(client)
}

/// Issues another merchant certificate from this simulator's CA (for tests of what paydesk
/// does with an expired or foreign-merchant certificate): writes `<name>_cert.pem` and
/// `<name>_key.pem` into `out` and returns their paths.
pub fn issue_merchant_certificate(
    paths: &CertPaths,
    mch_id: &str,
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
    out: &Path,
    name: &str,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let ca_key = KeyPair::from_pem(
        &std::fs::read_to_string(&paths.ca_key)
            .with_context(|| format!("cannot read {}", paths.ca_key.display()))?,
    )?;
    // The same CA name and key: what it signs verifies against the stored ca.pem.
    let ca = ca_params()?.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let cert = merchant_params(mch_id, not_before, not_after)?.signed_by(&key, &ca, &ca_key)?;
    let cert_path = out.join(format!("{name}_cert.pem"));
    let key_path = out.join(format!("{name}_key.pem"));
    write(&key_path, key.serialize_pem().as_bytes())?;
    write(&cert_path, cert.pem().as_bytes())?;
    Ok((cert_path, key_path))
}

fn generate(paths: &CertPaths, mch_id: &str) -> anyhow::Result<()> {
    let ca_key = KeyPair::generate()?;
    let ca = ca_params()?.self_signed(&ca_key)?;

    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    server
        .distinguished_name
        .push(DnType::CommonName, "api.mch.weixin.qq.com (paydesk-sim)");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut server, 825);
    let server = server.signed_by(&server_key, &ca, &ca_key)?;

    let client_key = KeyPair::generate()?;
    let now = time::OffsetDateTime::now_utc();
    let client = merchant_params(
        mch_id,
        now - time::Duration::days(1),
        now + time::Duration::days(1825),
    )?
    .signed_by(&client_key, &ca, &ca_key)?;

    // Keys first, certificates last: `complete()` only looks at all six.
    write(&paths.ca_key, ca_key.serialize_pem().as_bytes())?;
    write(&paths.server_key, server_key.serialize_pem().as_bytes())?;
    write(&paths.client_key, client_key.serialize_pem().as_bytes())?;
    write(&paths.server_cert, server.pem().as_bytes())?;
    write(&paths.client_cert, client.pem().as_bytes())?;
    write(&paths.ca, ca.pem().as_bytes())?;
    tracing::info!(dir = %paths.dir.display(), "generated the simulator CA, server and merchant certificates");
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Write `apiclient_cert.p12` from the PEM pair with `mch_id` as password (§3), on every
/// start, so it always matches the configured mch_id.
fn write_p12(paths: &CertPaths, mch_id: &str) -> anyhow::Result<()> {
    use p12_keystore::{KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let cert = CertificateDer::from_pem_file(&paths.client_cert)
        .with_context(|| format!("cannot read {}", paths.client_cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&paths.client_key)
        .with_context(|| format!("cannot read {}", paths.client_key.display()))?;
    let chain = PrivateKeyChain::new(
        b"apiclient".as_slice(),
        PrivateKey::from_der(key.secret_der()).context("merchant key for PKCS#12")?,
        [p12_keystore::Certificate::from_der(cert.as_ref()).context("merchant certificate")?],
    );
    let mut store = KeyStore::new();
    store.add_entry("apiclient", KeyStoreEntry::PrivateKeyChain(chain));
    let der = store.writer(mch_id).write().context("writing PKCS#12")?;
    write(&paths.client_p12, &der)
}

/// The rustls configuration of the mutual-TLS listener: our server certificate, and a
/// client-certificate verifier that **requires** a certificate issued by our CA (§8.5). A
/// missing or foreign certificate fails the handshake.
pub fn mtls_server_config(paths: &CertPaths) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&paths.ca)
        .with_context(|| format!("cannot read {}", paths.ca.display()))?
    {
        roots.add(ca.context("CA certificate")?)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("client certificate verifier")?;
    let chain = CertificateDer::pem_file_iter(&paths.server_cert)
        .with_context(|| format!("cannot read {}", paths.server_cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .context("server certificate")?;
    let key = PrivateKeyDer::from_pem_file(&paths.server_key)
        .with_context(|| format!("cannot read {}", paths.server_key.display()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("server certificate and key do not match")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_generated_once_and_reused() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();

        // Act
        let first = ensure(dir.path(), "10000100").unwrap();
        let ca_before = std::fs::read(&first.ca).unwrap();
        let second = ensure(dir.path(), "10000100").unwrap();

        // Assert
        assert_eq!(first, second);
        assert_eq!(std::fs::read(&second.ca).unwrap(), ca_before);
        assert!(second.client_p12.is_file());
        let identity =
            wxpay::MerchantIdentity::from_pkcs12_file(&second.client_p12, "10000100").unwrap();
        assert!(identity.pem_bundle().is_ok());
        assert!(mtls_server_config(&second).is_ok());
    }
}
