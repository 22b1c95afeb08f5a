//! Privileged tests of the TLS capture against real clients and servers on 127.0.0.1: curl
//! (OpenSSL), gnutls-cli (GnuTLS) and a Python HTTPS server (OpenSSL's `_ex` calls). They skip
//! when not root, and fail instead with `TAPLINE_REQUIRE_PRIVILEGED=1`.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::*;
use tapline_tls::{TlsCapture, TlsDirection, TlsLibrary, TlsOptions, TlsRole};

const TOOLS: [&str; 3] = [PYTHON, CURL, OPENSSL];

#[test]
fn root_curl_and_python_plaintext_both_sides() {
    let test = "root_curl_and_python_plaintext_both_sides";
    if !require(test, &TOOLS) {
        return;
    }
    let server = HttpsServer::start();
    let mut capture = TlsCapture::open(&TlsOptions {
        all_processes: true,
        ..TlsOptions::default()
    })
    .unwrap();
    let notes = capture.notes();
    assert!(
        notes.iter().any(|n| n.contains("libssl.so.3")),
        "no libssl note: {notes:?}"
    );
    let (client, body) = curl(server.port, "/hello");
    assert_eq!(body, b"hello from tls\n");
    let server_pid = server.pid();
    let seen = collect(&mut capture, Duration::from_secs(5), &|seen| {
        closed(seen, client) && stream(seen, server_pid, TlsDirection::Sent).0.len() > 15
    });

    let (request, lost) = stream(&seen, client, TlsDirection::Sent);
    assert_eq!(lost, 0);
    let text = String::from_utf8_lossy(&request);
    assert!(text.starts_with("GET /hello HTTP/1.1\r\n"), "{text:?}");
    assert!(
        text.contains(&format!("Host: 127.0.0.1:{}\r\n", server.port)),
        "{text:?}"
    );
    assert!(text.ends_with("\r\n\r\n"), "{text:?}");
    assert_eq!(stream(&seen, server_pid, TlsDirection::Received).0, request);

    let (response, _) = stream(&seen, server_pid, TlsDirection::Sent);
    assert!(response.starts_with(b"HTTP/1.0 200 OK\r\n"));
    assert!(response.ends_with(b"\r\n\r\nhello from tls\n"));
    assert_eq!(stream(&seen, client, TlsDirection::Received).0, response);

    let server_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, server.port));
    let client_event = seen
        .iter()
        .find(|e| e.pid == client && e.data.is_some())
        .unwrap();
    assert_eq!(client_event.library, TlsLibrary::OpenSsl);
    assert_eq!(client_event.command, "curl");
    assert_eq!(client_event.remote, Some(server_addr));
    assert_eq!(client_event.role, TlsRole::Client);
    let client_addr = client_event.local.unwrap();
    let server_event = seen
        .iter()
        .find(|e| e.pid == server_pid && e.data.is_some())
        .unwrap();
    assert_eq!(server_event.local, Some(server_addr));
    assert_eq!(server_event.remote, Some(client_addr));
    assert_eq!(server_event.role, TlsRole::Server);
    assert!(closed(&seen, client), "no close from curl");
    let info = capture.process(client).unwrap();
    assert_eq!(info.command, "curl");
    let counters = capture.counters().unwrap();
    assert_eq!(counters.lost_bytes, 0, "{counters:?}");
    assert!(counters.chunks >= 4, "{counters:?}");
}

#[test]
fn root_large_response_arrives_chunked_without_loss() {
    let test = "root_large_response_arrives_chunked_without_loss";
    if !require(test, &TOOLS) {
        return;
    }
    let server = HttpsServer::start();
    let mut capture = TlsCapture::open(&TlsOptions {
        pids: vec![server.pid()],
        ..TlsOptions::default()
    })
    .unwrap();
    let (_, body) = curl(server.port, "/big");
    let expected = big_body();
    assert_eq!(body, expected);
    let server_pid = server.pid();
    let seen = collect(&mut capture, Duration::from_secs(5), &|seen| {
        stream(seen, server_pid, TlsDirection::Sent).0.len() > expected.len()
    });
    let (sent, lost) = stream(&seen, server_pid, TlsDirection::Sent);
    assert_eq!(lost, 0);
    assert!(sent.ends_with(&expected), "{} bytes sent", sent.len());
    // The body went out in one SSL_write_ex call, cut into 16 KiB chunks.
    let chunks: Vec<(u32, u32, usize)> = seen
        .iter()
        .filter_map(|e| match &e.data {
            Some((TlsDirection::Sent, data, _, offset, call_len)) if *call_len == 1 << 20 => {
                Some((*offset, *call_len, data.len()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(chunks.len(), 64, "{chunks:?}");
    for (i, (offset, _, len)) in chunks.iter().enumerate() {
        assert_eq!(*offset as usize, i * 16384);
        assert_eq!(*len, 16384);
    }
    let counters = capture.counters().unwrap();
    assert_eq!(counters.lost_bytes, 0, "{counters:?}");
    assert_eq!(counters.ring_full, 0, "{counters:?}");
}

#[test]
fn root_gnutls_client_plaintext() {
    let test = "root_gnutls_client_plaintext";
    if !require(test, &[PYTHON, GNUTLS_CLI, OPENSSL]) {
        return;
    }
    let server = HttpsServer::start();
    let mut capture = TlsCapture::open(&TlsOptions {
        binaries: vec![GNUTLS_CLI.into()],
        pids: vec![server.pid()],
        ..TlsOptions::default()
    })
    .unwrap();
    let notes = capture.notes();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("libgnutls.so") && n.contains("gnutls_record_send")),
        "{notes:?}"
    );
    let request = b"GET /hello HTTP/1.0\r\nHost: gnutls\r\n\r\n";
    let client = gnutls_cli(server.port, request, "hello from tls");
    let server_pid = server.pid();
    let seen = collect(&mut capture, Duration::from_secs(5), &|seen| {
        closed(seen, client) && !stream(seen, client, TlsDirection::Received).0.is_empty()
    });
    assert_eq!(stream(&seen, client, TlsDirection::Sent).0, request);
    assert_eq!(stream(&seen, server_pid, TlsDirection::Received).0, request);
    let (response, _) = stream(&seen, server_pid, TlsDirection::Sent);
    assert!(response.ends_with(b"hello from tls\n"));
    assert_eq!(stream(&seen, client, TlsDirection::Received).0, response);
    let event = seen.iter().find(|e| e.pid == client).unwrap();
    assert_eq!(event.library, TlsLibrary::GnuTls);
    assert_eq!(
        event.remote,
        Some(SocketAddr::from((Ipv4Addr::LOCALHOST, server.port)))
    );
    assert!(closed(&seen, client), "no close from gnutls-cli");
}

#[test]
fn root_pid_filter_keeps_only_that_process() {
    let test = "root_pid_filter_keeps_only_that_process";
    if !require(test, &TOOLS) {
        return;
    }
    let server = HttpsServer::start();
    let mut capture = TlsCapture::open(&TlsOptions {
        pids: vec![server.pid()],
        ..TlsOptions::default()
    })
    .unwrap();
    let (client, _) = curl(server.port, "/hello");
    let server_pid = server.pid();
    let seen = collect(&mut capture, Duration::from_secs(3), &|seen| {
        !stream(seen, server_pid, TlsDirection::Sent).0.is_empty()
    });
    assert!(seen.iter().any(|e| e.pid == server_pid));
    assert!(
        seen.iter().all(|e| e.pid == server_pid),
        "events of other processes: {:?}",
        seen.iter().map(|e| (e.pid, &e.command)).collect::<Vec<_>>()
    );
    assert!(!seen.iter().any(|e| e.pid == client));
}

#[test]
fn root_binary_filter_keeps_only_its_processes() {
    let test = "root_binary_filter_keeps_only_its_processes";
    if !require(test, &TOOLS) {
        return;
    }
    let server = HttpsServer::start();
    let mut capture = TlsCapture::open(&TlsOptions {
        binaries: vec![CURL.into()],
        ..TlsOptions::default()
    })
    .unwrap();
    let notes = capture.notes();
    assert!(
        notes.iter().any(|n| n.contains("libssl.so.3")),
        "curl's libssl not found through DT_NEEDED: {notes:?}"
    );
    let (client, _) = curl(server.port, "/hello");
    let seen = collect(&mut capture, Duration::from_secs(3), &|seen| {
        closed(seen, client)
    });
    assert!(seen.iter().any(|e| e.pid == client));
    assert!(
        seen.iter().all(|e| e.pid == client),
        "events of other processes: {:?}",
        seen.iter().map(|e| (e.pid, &e.command)).collect::<Vec<_>>()
    );
}

/// A program that waits forever; `extra` adds declarations (marks of a TLS stack).
fn waiting_program(extra: &str) -> String {
    format!("#include <unistd.h>\n{extra}\nint main(void) {{ for (;;) pause(); }}\n")
}

#[test]
fn root_unsupported_stacks_are_reported_per_process() {
    let test = "root_unsupported_stacks_are_reported_per_process";
    if !require(test, &["/usr/bin/cc"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A Go binary as the capture recognizes one: a .go.buildinfo section and crypto/tls.
    let go = compile(
        dir.path(),
        "fakego",
        &waiting_program(
            "__attribute__((section(\".go.buildinfo\"), used)) static const char buildinfo[32] = \"\\xff Go buildinf:\";\n\
             __attribute__((used)) static const char tls[] = \"crypto/tls.(*Conn).Write\";",
        ),
    );
    let rustls = compile(
        dir.path(),
        "fakerustls",
        &waiting_program(
            "__attribute__((used)) static const char path[] = \"rustls-0.23.1/src/conn.rs\";",
        ),
    );
    let plain = compile(dir.path(), "plain", &waiting_program(""));
    let java = dir.path().join("java");
    std::fs::copy(&plain, &java).unwrap();
    let spawn = |path: &std::path::Path| Running(std::process::Command::new(path).spawn().unwrap());
    let running = [spawn(&go), spawn(&rustls), spawn(&java), spawn(&plain)];
    std::thread::sleep(Duration::from_millis(100));
    let pids: Vec<u32> = running.iter().map(|r| r.0.id()).collect();
    let mut capture = TlsCapture::open(&TlsOptions {
        pids: pids.clone(),
        binaries: vec![go.clone()],
        ..TlsOptions::default()
    })
    .unwrap();
    let notes = capture.notes();
    let has = |needle: &str| notes.iter().any(|n| n.starts_with(needle));
    assert!(
        has(&format!(
            "binary {}: Go crypto/tls is not supported",
            go.display()
        )),
        "{notes:?}"
    );
    assert!(
        has(&format!(
            "pid {} (fakego): Go crypto/tls is not supported",
            pids[0]
        )),
        "{notes:?}"
    );
    assert!(
        has(&format!(
            "pid {} (fakerustls): rustls is not supported",
            pids[1]
        )),
        "{notes:?}"
    );
    assert!(
        has(&format!(
            "pid {} (java): Java TLS (JSSE) is not supported",
            pids[2]
        )),
        "{notes:?}"
    );
    assert!(
        has(&format!("pid {} (plain): no TLS library found", pids[3])),
        "{notes:?}"
    );
    // Rescans do not repeat them.
    assert!(capture.notes().is_empty());
}

#[test]
fn root_missing_targets_are_named() {
    let test = "root_missing_targets_are_named";
    if !require(test, &[]) {
        return;
    }
    let error = TlsCapture::open(&TlsOptions {
        pids: vec![u32::MAX - 7],
        ..TlsOptions::default()
    })
    .unwrap_err();
    assert!(!error.is_environment());
    assert!(
        error.to_string().contains(&format!("pid {}", u32::MAX - 7)),
        "{error}"
    );
    let error = TlsCapture::open(&TlsOptions {
        binaries: vec!["/nonexistent/server".into()],
        ..TlsOptions::default()
    })
    .unwrap_err();
    assert!(error.to_string().contains("/nonexistent/server"), "{error}");
}

#[test]
fn root_new_process_with_a_private_library_is_probed() {
    let test = "root_new_process_with_a_private_library_is_probed";
    if !require(test, &TOOLS) {
        return;
    }
    let system = std::path::Path::new("/lib/x86_64-linux-gnu/libssl.so.3");
    if !system.exists() {
        skip(test, "no /lib/x86_64-linux-gnu/libssl.so.3 to copy");
        return;
    }
    // A copy is another file (inode): the system library's probes do not see it.
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("libssl.so.3");
    std::fs::copy(system, &private).unwrap();
    let mut capture = TlsCapture::open(&TlsOptions {
        all_processes: true,
        ..TlsOptions::default()
    })
    .unwrap();
    capture.notes();
    let server = HttpsServer::start_with_env(&[("LD_LIBRARY_PATH", dir.path())]);
    // Python loads libssl late (import ssl); the rescans after its exec find it.
    let shown = private.display().to_string();
    let mut notes = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    while std::time::Instant::now() < deadline && !notes.iter().any(|n: &String| n.contains(&shown))
    {
        collect(&mut capture, Duration::from_millis(50), &|_| false);
        notes.extend(capture.notes());
    }
    assert!(
        notes
            .iter()
            .any(|n| n.contains(&shown) && n.contains(&format!("pid {}", server.pid()))),
        "{notes:?}"
    );
    curl(server.port, "/hello");
    let server_pid = server.pid();
    let seen = collect(&mut capture, Duration::from_secs(5), &|seen| {
        !stream(seen, server_pid, TlsDirection::Sent).0.is_empty()
    });
    let (received, _) = stream(&seen, server_pid, TlsDirection::Received);
    assert!(received.starts_with(b"GET /hello HTTP/1.1\r\n"));
}

#[test]
fn root_ipv6_connections_carry_their_addresses() {
    let test = "root_ipv6_connections_carry_their_addresses";
    if !require(test, &TOOLS) {
        return;
    }
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        skip(test, "no IPv6 loopback");
        return;
    }
    let server = HttpsServer::start_on("::1", &[]);
    let mut capture = TlsCapture::open(&TlsOptions {
        pids: vec![server.pid()],
        ..TlsOptions::default()
    })
    .unwrap();
    let (client, _) = curl_url(&format!("https://[::1]:{}/hello", server.port));
    let server_pid = server.pid();
    let seen = collect(&mut capture, Duration::from_secs(3), &|seen| {
        !stream(seen, server_pid, TlsDirection::Sent).0.is_empty()
    });
    let event = seen.iter().find(|e| e.pid == server_pid).unwrap();
    let local = event.local.unwrap();
    let remote = event.remote.unwrap();
    assert_eq!(local, format!("[::1]:{}", server.port).parse().unwrap());
    assert_eq!(remote.ip(), "::1".parse::<std::net::IpAddr>().unwrap());
    assert_ne!(remote.port(), 0);
    assert_eq!(event.role, TlsRole::Server);
    assert!(!seen.iter().any(|e| e.pid == client));
}
