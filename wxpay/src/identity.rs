//! The merchant's API client certificate for `/secapi/` calls (docs/wechatpay-v2.md §2.2, §3, §8.5).
//!
//! rustls (the only TLS stack this crate uses) reads PEM but not PKCS#12, so a `.p12` is
//! opened with the pure-Rust `p12-keystore` crate and converted to a PEM key + chain in
//! memory. That crate also reads the legacy RC2-40 / 3DES encryptions that OpenSSL 3 only
//! opens with its `-legacy` provider (§3). Certificate facts (subject, expiry) come from
//! `x509-parser`, also pure Rust.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::Error;

/// The merchant identity presented on mutual-TLS calls (§3): the PEM pair
/// (`apiclient_cert.pem` + `apiclient_key.pem`, preferred) or the PKCS#12 file
/// (`apiclient_cert.p12`, whose password defaults to the **mch_id**).
///
/// `Debug` never prints key material or the password.
#[derive(Clone)]
pub enum MerchantIdentity {
    /// Certificate chain (leaf first) and private key (PKCS#8, PKCS#1 or SEC1), PEM.
    Pem {
        /// `apiclient_cert.pem`.
        cert_pem: Vec<u8>,
        /// `apiclient_key.pem`.
        key_pem: Zeroizing<Vec<u8>>,
    },
    /// `apiclient_cert.p12` (DER) and its password (the mch_id unless changed).
    Pkcs12 {
        /// The file contents.
        der: Vec<u8>,
        /// The password.
        password: Zeroizing<String>,
    },
}

impl fmt::Debug for MerchantIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MerchantIdentity::Pem { cert_pem, .. } => f
                .debug_struct("MerchantIdentity::Pem")
                .field("cert_pem_bytes", &cert_pem.len())
                .field("key_pem", &"[redacted]")
                .finish(),
            MerchantIdentity::Pkcs12 { der, .. } => f
                .debug_struct("MerchantIdentity::Pkcs12")
                .field("der_bytes", &der.len())
                .field("password", &"[redacted]")
                .finish(),
        }
    }
}

fn identity_err(reason: impl Into<String>) -> Error {
    Error::Identity {
        reason: reason.into(),
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| identity_err(format!("cannot read {what} {}: {e}", path.display())))
}

fn pem_block(label: &str, der: &[u8], out: &mut Vec<u8>) {
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    out.extend_from_slice(format!("-----BEGIN {label}-----\n").as_bytes());
    for chunk in b64.as_bytes().chunks(64) {
        out.extend_from_slice(chunk);
        out.push(b'\n');
    }
    out.extend_from_slice(format!("-----END {label}-----\n").as_bytes());
}

/// Facts about the merchant certificate, for the start-up log and expiry warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Subject DN, e.g. `CN=1900000109, O=…`.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial number, hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

impl CertificateInfo {
    /// Whole days from `now` until `not_after` (negative once expired).
    pub fn days_left(&self, now: OffsetDateTime) -> i64 {
        (self.not_after - now).whole_days()
    }

    /// Whether the certificate expires within `days` days of `now` (the server warns at 30).
    pub fn expires_within(&self, days: i64, now: OffsetDateTime) -> bool {
        self.not_after - now < time::Duration::days(days)
    }
}

impl MerchantIdentity {
    /// Load the PEM pair from files (§3).
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, Error> {
        Ok(MerchantIdentity::Pem {
            cert_pem: read(cert.as_ref(), "certificate")?,
            key_pem: Zeroizing::new(read(key.as_ref(), "private key")?),
        })
    }

    /// Load a PKCS#12 file (§3); `password` is the mch_id unless it was changed.
    pub fn from_pkcs12_file(
        path: impl AsRef<Path>,
        password: impl Into<String>,
    ) -> Result<Self, Error> {
        Ok(MerchantIdentity::Pkcs12 {
            der: read(path.as_ref(), "PKCS#12 file")?,
            password: Zeroizing::new(password.into()),
        })
    }

    /// The identity as one PEM buffer: private key, then the certificate chain, leaf first —
    /// what `reqwest::Identity::from_pem` takes with rustls.
    pub fn pem_bundle(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        match self {
            MerchantIdentity::Pem { cert_pem, key_pem } => {
                let mut out =
                    Zeroizing::new(Vec::with_capacity(cert_pem.len() + key_pem.len() + 1));
                out.extend_from_slice(key_pem);
                if !out.ends_with(b"\n") {
                    out.push(b'\n');
                }
                out.extend_from_slice(cert_pem);
                Ok(out)
            }
            MerchantIdentity::Pkcs12 { der, password } => {
                let store = KeyStore::from_pkcs12(der, password, Pkcs12ImportPolicy::Relaxed).map_err(|e| {
                    identity_err(format!(
                        "cannot open the PKCS#12 file (wrong password? it defaults to the mch_id): {e}"
                    ))
                })?;
                let (_, chain) = store
                    .private_key_chain()
                    .ok_or_else(|| identity_err("the PKCS#12 file holds no private key"))?;
                if chain.certs().is_empty() {
                    return Err(identity_err(
                        "the PKCS#12 file holds no certificate for its key",
                    ));
                }
                let mut out = Zeroizing::new(Vec::new());
                pem_block("PRIVATE KEY", chain.key().as_der(), &mut out);
                for cert in chain.certs() {
                    pem_block("CERTIFICATE", cert.as_der(), &mut out);
                }
                Ok(out)
            }
        }
    }

    /// The leaf certificate, DER.
    fn leaf_der(&self) -> Result<Vec<u8>, Error> {
        match self {
            MerchantIdentity::Pem { cert_pem, .. } => {
                let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem)
                    .map_err(|e| identity_err(format!("no PEM certificate found: {e}")))?;
                if pem.label != "CERTIFICATE" {
                    return Err(identity_err(format!(
                        "expected a CERTIFICATE PEM block, found {:?} (cert and key swapped?)",
                        pem.label
                    )));
                }
                Ok(pem.contents)
            }
            MerchantIdentity::Pkcs12 { .. } => {
                let bundle = self.pem_bundle()?;
                let mut rest: &[u8] = &bundle;
                loop {
                    let (next, pem) = x509_parser::pem::parse_x509_pem(rest).map_err(|e| {
                        identity_err(format!("no certificate in the PKCS#12 file: {e}"))
                    })?;
                    if pem.label == "CERTIFICATE" {
                        return Ok(pem.contents);
                    }
                    rest = next;
                }
            }
        }
    }

    /// Subject, issuer, serial and validity of the leaf certificate (for the start-up log and
    /// the 30-day expiry warning).
    pub fn certificate_info(&self) -> Result<CertificateInfo, Error> {
        let der = self.leaf_der()?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| identity_err(format!("cannot parse the certificate: {e}")))?;
        let validity = cert.validity();
        Ok(CertificateInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string(),
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
        })
    }

    /// The reqwest identity (rustls).
    pub(crate) fn to_reqwest(&self) -> Result<reqwest::Identity, Error> {
        let bundle = self.pem_bundle()?;
        reqwest::Identity::from_pem(&bundle).map_err(|e| {
            identity_err(format!(
                "certificate / key not usable for TLS: {}",
                e.without_url()
            ))
        })
    }
}
