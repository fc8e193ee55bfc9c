//! The `paydesk-sim` binary: flags from the Contract, the startup banner, the control API.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_binary_starts_with_the_contract_flags_and_prints_its_endpoints_and_cert_paths() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_paydesk-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tls-listen",
            "127.0.0.1:0",
            "--cert-dir",
        ])
        .arg(dir.path())
        .args(["--appid", "wx1234567890abcdef", "--mch-id", "1900000109"])
        .args([
            "--api-key",
            "abcdefghijklmnopqrstuvwxyz012345",
            "--time-scale",
            "1000",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Act: read the banner
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.contains("merchant p12");
        lines.push(line);
        if done || Instant::now() > deadline {
            break;
        }
    }
    let http = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("API (http)"))
        .map(|v| v.trim().to_owned());
    let health = http.as_ref().map(|base| {
        let addr = base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        use std::io::{Read, Write};
        write!(
            stream,
            "GET /sim/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    });
    let _ = child.kill();
    let _ = child.wait();

    // Assert
    let banner = lines.join("\n");
    assert!(http.is_some(), "{banner}");
    assert!(banner.contains("mch_id            1900000109"), "{banner}");
    assert!(
        !banner.contains("abcdefghijklmnopqrstuvwxyz012345"),
        "the API key is printed masked"
    );
    assert!(banner.contains("****2345"), "{banner}");
    assert!(banner.contains("apiclient_cert.p12"), "{banner}");
    assert!(dir.path().join("ca.pem").is_file());
    let health = health.unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"mch_id\":\"1900000109\""), "{health}");
}
