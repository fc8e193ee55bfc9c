//! The real binary's operational behaviour: graceful shutdown on SIGTERM.

use paydesk_e2e::Server;

#[test]
fn sigterm_finishes_in_flight_work_and_exits_cleanly() -> anyhow::Result<()> {
    // Arrange
    let mut server = Server::start()?;
    let health = std::process::Command::new("curl")
        .args(["-sf", &server.url("/healthz")])
        .output()?;
    assert_eq!(String::from_utf8_lossy(&health.stdout), "ok\n");

    // Act
    let (code, lines) = server.terminate()?;

    // Assert
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("paydesk: stopped")),
        "{lines:#?}"
    );
    Ok(())
}
