//! The pinned TLS channel (paper §3.2.2, docs/secure-channel.md) over real sockets: the service
//! daemon serves its API over TLS 1.3 with a certificate made by `iotegrity cert issue` and
//! pinned on chain; `iotegrity tls probe NAME` resolves the name on chain and accepts the server
//! only while `verifyCertificate` accepts the key it presents — refusing a wrong pin, another
//! name's pin at the address, a TLS 1.2-only peer, an expired window, a revoked certificate (from
//! the next connection on) and a closed owner. openssl, from outside, reads the same key.

use iotegrity_core::tls::ProofFile;
use iotegrity_e2e::pg::free_port;
use iotegrity_e2e::{Ident, ServiceWorld, World};
use std::process::{Child, Command, Stdio};

/// `openssl s_server` on `ip:port` with `cert`/`key` and `proto` (e.g. `-tls1_3`); killed on drop.
struct OpensslServer(Child);

impl OpensslServer {
    fn start(ip: &str, port: u16, cert: &str, key: &str, proto: &str) -> Self {
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-naccept", "100", "-accept", &format!("{ip}:{port}")])
            .args(["-cert", cert, "-key", key, proto])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl runs (make test installs it)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect((ip, port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "openssl s_server did not listen on {ip}:{port}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self(child)
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A certificate's files: `<dir>/<stem>.pem`, `<dir>/<stem>.key`.
fn files(dir: &std::path::Path, stem: &str) -> (String, String) {
    (dir.join(format!("{stem}.pem")).display().to_string(), dir.join(format!("{stem}.key")).display().to_string())
}

/// `cert issue NAME` into `files`; returns the key hash.
fn issue(w: &World, name: &str, (cert, key): &(String, String)) -> String {
    let out = w.cli(&["cert", "issue", name, "--cert-out", cert, "--key-out", key]).json();
    out["keyHash"].as_str().unwrap().to_string()
}

/// `cert add NAME` for `files`, its possession proven with its key, by `owner`, with `extra`.
fn pin(w: &World, owner: &Ident, name: &str, (cert, key): &(String, String), extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["cert", "add", name, "--cert", cert, "--key", key];
    args.extend_from_slice(extra);
    w.run_as(owner, &args).json()
}

fn probe(w: &World, name: &str, port: u16) -> iotegrity_e2e::Run {
    w.cli(&["tls", "probe", name, "--port", &port.to_string(), "--timeout-secs", "5"])
}

/// The certificate `openssl s_client` is shown on `port`, as PEM.
fn seen_by_openssl(port: u16, proto: &str) -> std::process::Output {
    Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", "svc.iot", proto])
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs")
}

#[tokio::test]
async fn the_pinned_channel_accepts_only_what_the_chain_accepts_now() {
    let port = free_port();
    // The daemon's certificate is written by `cert issue` below, before the daemon starts.
    let dir = tempfile::tempdir().unwrap();
    let svc_files = files(dir.path(), "svc");
    let sw = ServiceWorld::with_extra(
        "name = \"public.readings\"",
        &format!(
            "[ingest]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            svc_files.0, svc_files.1
        ),
    )
    .await;
    let (w, svc) = (&sw.w, &sw.svc);
    w.run_as(svc, &["name", "register", "svc.iot", "--ip", "127.0.0.1"]).json();
    let pinned = issue(w, "svc.iot", &svc_files);
    // An existing key file is never overwritten.
    let again = w.cli(&["cert", "issue", "svc.iot", "--cert-out", &w.path("x.pem"), "--key-out", &svc_files.1]);
    assert!(again.failure().contains("never overwritten"), "{}", again.stderr);
    assert_eq!(pin(w, svc, "svc.iot", &svc_files, &[])["keyHash"].as_str(), Some(pinned.as_str()));
    let _daemon = sw.spawn_daemon(0);
    sw.wait_log(0, "ingest API listening");

    // The channel: resolved on chain, the presented key is the pinned one.
    let ok = probe(w, "svc.iot", port).json();
    assert_eq!(ok["certKeyHash"].as_str(), Some(pinned.as_str()), "{ok}");
    assert_eq!(ok["accepted"], serde_json::json!([pinned]), "{ok}");
    assert_eq!((ok["ip"].as_str(), ok["tlsVersion"].as_str()), (Some("127.0.0.1"), Some("TLSv1.3")), "{ok}");
    assert_ne!(probe(w, "svc.iot", port).json()["exporterHash"], ok["exporterHash"], "one exporter per session");
    // From outside: the certificate openssl reads from the daemon hashes to the chain's pin, and
    // openssl cannot speak TLS 1.2 to it.
    let out = seen_by_openssl(port, "-tls1_3");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let pem = &text
        [text.find("-----BEGIN CERTIFICATE-----").expect(&text)..text.find("-----END CERTIFICATE-----").unwrap() + 25];
    let info = iotegrity_core::cert::CertInfo::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(info.key_hash.to_string(), pinned);
    let old = seen_by_openssl(port, "-tls1_2");
    assert!(!String::from_utf8_lossy(&old.stdout).contains("-----BEGIN CERTIFICATE-----"), "TLS 1.2 was served");

    // A proof of this very session, signed by the service (its API serves it over TLS only) and
    // countersigned by the client, backs one vote on the name — checked on chain.
    let voter = w.identity("voter", "device").await;
    let proof_path = w.path("handshake.json");
    let probe_as = |who: &Ident, out: &str| {
        w.run_online(who, &["tls", "probe", "svc.iot", "--port", &port.to_string(), "--proof-out", out]).json()
    };
    let probed = probe_as(&voter, &proof_path);
    let file: ProofFile = serde_json::from_str(&std::fs::read_to_string(&proof_path).unwrap()).unwrap();
    assert_eq!(file.cert_key_hash.to_string(), pinned);
    assert_eq!(file.exporter_hash.to_string(), probed["exporterHash"].as_str().unwrap(), "bound to the session");
    assert_eq!((file.server, file.client), (svc.online, voter.online));
    let vote = |who: &Ident, name: &str, path: &str| {
        w.run_as(who, &["reputation", "vote", "--name", name, "--score", "70", "--proof", path])
    };
    // Before it is used: by another voter, or for another name — refused.
    let voter2 = w.identity("voter2", "device").await;
    let err = vote(&voter2, "svc.iot", &proof_path).failure().to_string();
    assert!(err.contains("Reputation_WrongClientSigner"), "{err}");
    w.run_as(svc, &["name", "register", "second.iot", "--ip", "127.0.0.1"]).json();
    let err = vote(&voter, "second.iot", &proof_path).failure().to_string();
    assert!(err.contains("Reputation_ProofForAnotherName"), "{err}");
    let cast = vote(&voter, "svc.iot", &proof_path).json();
    assert_eq!(cast["proofHash"], probed["proof"]["digest"], "{cast}");
    assert_eq!(w.cli(&["reputation", "show", "--name", "svc.iot"]).json()["votes"], 1);
    // Replayed, or spliced with another session's exporter: refused.
    let err = vote(&voter, "svc.iot", &proof_path).failure().to_string();
    assert!(err.contains("Reputation_ProofUsed"), "{err}");
    let second = w.path("handshake-2.json");
    probe_as(&voter2, &second);
    let mut spliced: ProofFile = serde_json::from_str(&std::fs::read_to_string(&second).unwrap()).unwrap();
    spliced.exporter_hash = file.exporter_hash;
    std::fs::write(&second, serde_json::to_string(&spliced).unwrap()).unwrap();
    let err = vote(&voter2, "svc.iot", &second).failure().to_string();
    assert!(err.contains("Reputation_WrongServerSigner"), "{err}");

    // A server at the name's address with a key nobody pinned: refused, and named.
    let stranger = files(w.dir.path(), "stranger");
    let stranger_hash = issue(w, "svc.iot", &stranger);
    let p2 = free_port();
    let s2 = OpensslServer::start("127.0.0.1", p2, &stranger.0, &stranger.1, "-tls1_3");
    let err = probe(w, "svc.iot", p2).failure().to_string();
    assert!(
        err.contains(&format!("presented certificate key {stranger_hash}, which the chain does not accept")),
        "{err}"
    );
    drop(s2);
    // The pinned certificate itself, but a peer that speaks TLS 1.2 only: refused.
    let p3 = free_port();
    let s3 = OpensslServer::start("127.0.0.1", p3, &svc_files.0, &svc_files.1, "-tls1_2");
    let err = probe(w, "svc.iot", p3).failure().to_string();
    assert!(err.contains("TLS 1.3 handshake with svc.iot at 127.0.0.1") && err.contains("failed"), "{err}");
    drop(s3);

    // The name resolves elsewhere, to a server whose key is pinned — for another name: refused.
    w.run_as(svc, &["name", "register", "other.iot", "--ip", "127.0.0.2"]).json();
    let other = files(w.dir.path(), "other");
    let other_hash = issue(w, "other.iot", &other);
    pin(w, svc, "other.iot", &other, &[]);
    let p4 = free_port();
    let s4 = OpensslServer::start("127.0.0.2", p4, &other.0, &other.1, "-tls1_3");
    assert_eq!(
        w.cli(&["tls", "probe", "other.iot", "--port", &p4.to_string()]).json()["certKeyHash"].as_str(),
        Some(other_hash.as_str())
    );
    w.run_as(svc, &["name", "update-ip", "svc.iot", "--ip", "127.0.0.2"]).json();
    let err = probe(w, "svc.iot", p4).failure().to_string();
    assert!(err.contains(&format!("svc.iot at 127.0.0.2:{p4} presented certificate key {other_hash}")), "{err}");
    drop(s4);
    w.run_as(svc, &["name", "update-ip", "svc.iot", "--ip", "127.0.0.1"]).json();

    // A pin whose window ends: accepted inside it, refused once the chain's clock passes it.
    let short = files(w.dir.path(), "short");
    issue(w, "svc.iot", &short);
    let now = chain_now(w).await;
    pin(w, svc, "svc.iot", &short, &["--not-after", &(now + 100).to_string()]);
    let p5 = free_port();
    let _s5 = OpensslServer::start("127.0.0.1", p5, &short.0, &short.1, "-tls1_3");
    probe(w, "svc.iot", p5).json();
    w.advance(200).await;
    let err = probe(w, "svc.iot", p5).failure().to_string();
    assert!(err.contains("which the chain does not accept"), "{err}");

    // Revoked between two connections: the second is refused.
    let rev = files(w.dir.path(), "rev");
    issue(w, "svc.iot", &rev);
    pin(w, svc, "svc.iot", &rev, &[]);
    let p6 = free_port();
    let _s6 = OpensslServer::start("127.0.0.1", p6, &rev.0, &rev.1, "-tls1_3");
    probe(w, "svc.iot", p6).json();
    w.run_as(svc, &["cert", "revoke", "svc.iot", "--cert", &rev.0]).json();
    let err = probe(w, "svc.iot", p6).failure().to_string();
    assert!(err.contains("which the chain does not accept"), "{err}");

    // The owner's identity closes: its name no longer resolves (and its pins no longer verify).
    probe(w, "svc.iot", port).json();
    w.run_as(svc, &["identity", "close", "--yes"]).json();
    let err = probe(w, "svc.iot", port).failure().to_string();
    assert!(err.contains("svc.iot does not resolve on chain"), "{err}");
    assert_eq!(w.cli(&["cert", "verify", "svc.iot", "--cert", &svc_files.0]).code, 1);
    // A name nobody registered does not resolve.
    let err = probe(w, "nobody.iot", port).failure().to_string();
    assert!(err.contains("nobody.iot does not resolve on chain"), "{err}");
}

/// The latest block's timestamp.
async fn chain_now(w: &World) -> u64 {
    let p = iotegrity_core::chain::reader(&w.anvil.endpoint()).unwrap();
    iotegrity_core::chain::latest_timestamp(&p).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_rolls_over_with_no_failed_handshake() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let current = files(dir.path(), "svc");
    let sw = ServiceWorld::with_extra(
        "name = \"public.readings\"",
        &format!(
            "[ingest]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            current.0, current.1
        ),
    )
    .await;
    let (w, svc) = (&sw.w, &sw.svc);
    w.run_as(svc, &["name", "register", "svc.iot", "--ip", "127.0.0.1"]).json();
    let old = issue(w, "svc.iot", &current);
    pin(w, svc, "svc.iot", &current, &[]);
    let old_copy = w.path("old.pem"); // the daemon's file is replaced below
    std::fs::copy(&current.0, &old_copy).unwrap();
    let _daemon = sw.spawn_daemon(0);
    sw.wait_log(0, "ingest API listening");

    // A client that keeps connecting by name all through the rollover, as a gateway would.
    let book = iotegrity_core::AddressBook::load(&w.book).unwrap();
    let provider = iotegrity_core::chain::reader(&w.anvil.endpoint()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut ok, mut failed, mut seen) = (0usize, Vec::new(), Vec::new());
            // The gateway's way: the name's pins kept per block, the latest block asked for while
            // the handshake runs.
            let pins = iotegrity_core::tls::PinCache::default();
            while !stop.load(Ordering::SeqCst) {
                let timeout = std::time::Duration::from_secs(5);
                match pins.connect(&provider, &book, "svc.iot", port, timeout, None).await {
                    Ok((_, s)) => {
                        ok += 1;
                        if !seen.contains(&s.cert_key_hash) {
                            seen.push(s.cert_key_hash);
                        }
                    }
                    Err(e) => failed.push(e.to_string()),
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            (ok, failed, seen)
        })
    };

    // The next certificate is pinned beside the current one; the server's files are replaced
    // (each by a rename) while `cert rotate` waits; it retires the old pin once the server
    // presents the next key.
    let next = files(w.dir.path(), "next");
    let new = issue(w, "svc.iot", &next);
    let rotated = std::thread::scope(|scope| {
        let rotate = scope.spawn(|| {
            let args = ["cert", "rotate", "svc.iot", "--cert", &next.0, "--key", &next.1, "--retire", &current.0];
            let port = port.to_string();
            let mut all: Vec<&str> = args.to_vec();
            all.extend(["--port", &port, "--wait-secs", "60"]);
            w.run_as(svc, &all)
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while w.cli(&["cert", "verify", "svc.iot", "--cert", &next.0]).code != 0 {
            assert!(std::time::Instant::now() < deadline, "the next key was never pinned");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        std::fs::rename(&next.0, &current.0).unwrap();
        std::fs::rename(&next.1, &current.1).unwrap();
        rotate.join().unwrap()
    });
    let report = rotated.json();
    assert_eq!(
        (report["next"].as_str(), report["retired"].as_str()),
        (Some(new.as_str()), Some(old.as_str())),
        "{report}"
    );
    // A few more connections after the retirement, then the tally.
    probe(w, "svc.iot", port).json();
    stop.store(true, Ordering::SeqCst);
    let (ok, failed, seen) = prober.await.unwrap();
    assert!(failed.is_empty(), "{} failed handshakes of {}: {failed:?}", failed.len(), ok + failed.len());
    let seen: Vec<String> = seen.iter().map(|k| k.to_string()).collect();
    assert_eq!(seen, vec![old.clone(), new.clone()], "the client saw the current key, then the next");
    assert!(ok >= 5, "{ok} handshakes");
    // The old pin is gone; rolling over from it again is refused before anything is sent.
    assert_eq!(w.cli(&["cert", "verify", "svc.iot", "--key-hash", &old]).code, 1);
    let other = files(w.dir.path(), "other");
    issue(w, "svc.iot", &other);
    let again = ["cert", "rotate", "svc.iot", "--cert", &other.0, "--key", &other.1, "--retire", &old_copy];
    let err = w.run_as(svc, &again).failure().to_string();
    assert!(err.contains(&format!("{old} is not a key the chain accepts for svc.iot now")), "{err}");
    assert_eq!(w.cli(&["cert", "verify", "svc.iot", "--cert", &other.0]).code, 1, "nothing was pinned");
}

/// The number of readings the service has stored.
fn stored_readings(g: &iotegrity_e2e::GatewayWorld) -> usize {
    g.i.s.pg.psql("postgres", "SELECT count(*) FROM iot.readings").parse().unwrap()
}

/// Waits until `text` shows up in the file at `log` at least `times` times.
fn wait_log_count(log: &std::path::Path, text: &str, times: usize, secs: u64) {
    let read = || std::fs::read_to_string(log).unwrap_or_default();
    iotegrity_e2e::wait_for(
        &format!("{times}× {text:?} in {}", log.display()),
        secs,
        || read().matches(text).count() >= times,
        read,
    );
}

/// The gateway knows its service only by name, the service its gateway only by name: readings go
/// over the pinned channel to `svc.iot`, and the service lets in only a client whose certificate
/// is pinned under `gw.iot`; commands go to `gw.iot`, whose API lets in only `svc.iot`. The
/// service goes away and comes back (nothing lost, nothing twice); its pin is revoked (the
/// gateway stops sending to it at once and keeps its backlog) and a new certificate rolled in
/// (delivery resumes); clients without a pinned certificate are refused both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_and_its_service_know_each_other_by_name_over_pinned_channels() {
    use iotegrity_core::tls::{Peer, ReloadingCert, Target};
    let certs = tempfile::tempdir().unwrap();
    let (svc_files, gw_files) = (files(certs.path(), "svc"), files(certs.path(), "gw"));
    let ingest = format!("tls_cert = \"{}\"\ntls_key = \"{}\"\nclient_names = [\"gw.iot\"]", svc_files.0, svc_files.1);
    let g = iotegrity_e2e::GatewayWorld::with_ingest(
        &[("env", "interval_ms = 20\nsensor = { kind = \"simulated\" }")],
        "",
        &ingest,
    )
    .await;
    let (w, svc, gw_id) = (&g.i.s.w, &g.i.s.svc, &g.i.gw);
    w.run_as(svc, &["name", "register", "svc.iot", "--ip", "127.0.0.1"]).json();
    w.run_as(gw_id, &["name", "register", "gw.iot", "--ip", "127.0.0.1"]).json();
    let svc_key = issue(w, "svc.iot", &svc_files);
    pin(w, svc, "svc.iot", &svc_files, &[]);
    issue(w, "gw.iot", &gw_files);
    pin(w, gw_id, "gw.iot", &gw_files, &[]);

    // The gateway: the service by name (through the proxy's port, which forwards TLS untouched),
    // its own certificate for the service, its API over TLS for `svc.iot` alone.
    let text = std::fs::read_to_string(&g.config).unwrap();
    let url_line = format!("url = \"http://127.0.0.1:{}\"", g.proxy.port);
    assert!(text.contains(&url_line));
    let named = format!(
        "name = \"svc.iot\"\nport = {}\ntls_cert = \"{}\"\ntls_key = \"{}\"",
        g.proxy.port, gw_files.0, gw_files.1
    );
    let api_line = format!("listen = \"127.0.0.1:{}\"", g.api_port);
    let api_tls = format!(
        "{api_line}\ntls_cert = \"{}\"\ntls_key = \"{}\"\nclient_names = [\"svc.iot\"]",
        gw_files.0, gw_files.1
    );
    std::fs::write(&g.config, text.replace(&url_line, &named).replace(&api_line, &api_tls)).unwrap();

    let service_log = w.dir.path().join("daemon-0.log");
    let service = g.i.s.start_service();
    let mut gateway = g.spawn_gateway(0);
    let gw_log = g.log_path(0);
    wait_log_count(&gw_log, "delivering to the service", 1, 30);
    assert!(std::fs::read_to_string(&gw_log).unwrap().contains("https://svc.iot:"), "the gateway names its service");
    let logs = || std::fs::read_to_string(&gw_log).unwrap_or_default();
    iotegrity_e2e::wait_for("readings delivered by name", 60, || stored_readings(&g) >= 20, logs);

    // Clients the service does not let in: no certificate, and a certificate pinned under no
    // name it accepts. Nothing they send is stored.
    let book = iotegrity_core::AddressBook::load(&w.book).unwrap();
    let provider = iotegrity_core::chain::reader(&w.anvil.endpoint()).unwrap();
    let to_service = Target::Name { name: "svc.iot".into(), port: g.i.port };
    let timeout = std::time::Duration::from_secs(5);
    let bare = Peer::new(to_service.clone(), provider.clone(), book.clone(), timeout, None);
    let err = bare.send("/v1/readings/batch", "[]".into()).await.unwrap_err();
    assert!(
        anyhow_chain(&err).contains("alert: CertificateRequired (the server lets in only"),
        "{}",
        anyhow_chain(&err)
    );
    let stranger_files = files(w.dir.path(), "stranger");
    issue(w, "gw.iot", &stranger_files);
    let stranger_cert =
        Some(std::sync::Arc::new(ReloadingCert::open(stranger_files.0.as_ref(), stranger_files.1.as_ref()).unwrap()));
    let stranger = Peer::new(to_service.clone(), provider.clone(), book.clone(), timeout, stranger_cert);
    let err = stranger.send("/v1/readings/batch", "[]".into()).await.unwrap_err();
    assert!(anyhow_chain(&err).contains("alert: AccessDenied (the server does not let"), "{}", anyhow_chain(&err));
    wait_log_count(&service_log, "TLS handshake refused", 2, 30);
    let service_text = std::fs::read_to_string(&service_log).unwrap();
    assert!(service_text.contains("client keys accepted: those pinned under gw.iot at block"), "{service_text}");

    // Commands by name, over the gateway's API: the service's pinned certificate is let in;
    // without it, or with a certificate pinned under no accepted name, the CLI is refused.
    let dev = g.device("env").online.to_string();
    let command = |seq: &str, tls: &[&str]| {
        let mut args = vec![
            "command".to_string(),
            "--online-keystore".into(),
            svc.dir.join("online.json").display().to_string(),
            "--password-file".into(),
            w.password_file.display().to_string(),
            "--device".into(),
            dev.clone(),
            "--sequence".into(),
            seq.into(),
            "--payload".into(),
            "{\"interval_ms\": 25}".into(),
            "--out".into(),
            w.path(&format!("cmd-{seq}.json")),
            "--to".into(),
            format!("gw.iot:{}", g.api_port),
            "--json".into(),
        ];
        args.extend(tls.iter().map(|s| s.to_string()));
        w.cli(&args)
    };
    let refused = command("1", &[]);
    assert!(
        refused.failure().contains("gw.iot") && refused.stderr.contains("CertificateRequired"),
        "{}",
        refused.stderr
    );
    let refused = command("1", &["--tls-cert", &stranger_files.0, "--tls-key", &stranger_files.1]);
    assert!(refused.failure().contains("AccessDenied"), "{}", refused.stderr);
    let sent = command("1", &["--tls-cert", &svc_files.0, "--tls-key", &svc_files.1]).json();
    assert_eq!(sent["feedback"]["ok"], true, "{sent}");
    assert_eq!(sent["feedback"]["interval_ms"], 25, "{sent}");

    // The service goes away: the gateway keeps signing into its journal and says why it waits.
    drop(service);
    let before = stored_readings(&g);
    wait_log_count(&gw_log, "delivery paused", 1, 30);
    // It comes back: the backlog drains over a new pinned channel.
    let service = g.i.s.spawn_daemon(1);
    let service_log = w.dir.path().join("daemon-1.log");
    iotegrity_e2e::wait_for(
        "the backlog delivered after the service came back",
        60,
        || stored_readings(&g) >= before + 40,
        logs,
    );

    // The name moves to an address where nothing listens: the gateway follows the chain, not the
    // address it used last, and sends nothing; moved back, it delivers again.
    w.run_as(svc, &["name", "update-ip", "svc.iot", "--ip", "127.0.0.2"]).json();
    wait_log_count(&gw_log, "cannot connect to svc.iot at 127.0.0.2", 1, 30);
    w.run_as(svc, &["name", "update-ip", "svc.iot", "--ip", "127.0.0.1"]).json();
    let moved_back = stored_readings(&g);
    iotegrity_e2e::wait_for(
        "delivery at the name's address again",
        60,
        || stored_readings(&g) >= moved_back + 20,
        logs,
    );

    // The service's certificate is revoked on chain: from the next connection on, the gateway
    // refuses the server (it now presents a key the chain does not accept for svc.iot) and sends
    // it nothing, keeping every reading in its journal.
    w.run_as(svc, &["cert", "revoke", "svc.iot", "--cert", &svc_files.0]).json();
    wait_log_count(
        &gw_log,
        &format!("presented certificate key {svc_key}, which the chain does not accept for svc.iot"),
        1,
        30,
    );
    let frozen = stored_readings(&g);
    wait_log_count(&gw_log, "which the chain does not accept", 3, 30);
    assert_eq!(stored_readings(&g), frozen, "nothing delivered to a server the chain does not accept");
    // A new certificate: pinned, then served (the daemon reads its files again): delivery resumes.
    let next_files = files(w.dir.path(), "next");
    issue(w, "svc.iot", &next_files);
    pin(w, svc, "svc.iot", &next_files, &[]);
    std::fs::rename(&next_files.0, &svc_files.0).unwrap();
    std::fs::rename(&next_files.1, &svc_files.1).unwrap();
    iotegrity_e2e::wait_for("delivery resumed under the new pin", 60, || stored_readings(&g) >= frozen + 40, logs);

    // The gateway's own certificate is revoked: the service lets it in no more (from the next
    // connection on); a new one pinned and put in place of the files, and it is let in again.
    let refusals = std::fs::read_to_string(&service_log).unwrap().matches("TLS handshake refused").count();
    w.run_as(gw_id, &["cert", "revoke", "gw.iot", "--cert", &gw_files.0]).json();
    wait_log_count(&gw_log, "AccessDenied", 1, 30);
    wait_log_count(&service_log, "TLS handshake refused", refusals + 2, 30);
    let frozen = stored_readings(&g);
    wait_log_count(&gw_log, "AccessDenied", 3, 30);
    assert_eq!(stored_readings(&g), frozen, "nothing taken from a client whose pin is revoked");
    let gw_next = files(w.dir.path(), "gw-next");
    issue(w, "gw.iot", &gw_next);
    pin(w, gw_id, "gw.iot", &gw_next, &[]);
    std::fs::rename(&gw_next.0, &gw_files.0).unwrap();
    std::fs::rename(&gw_next.1, &gw_files.1).unwrap();
    iotegrity_e2e::wait_for(
        "the gateway let in again under its new pin",
        60,
        || stored_readings(&g) >= frozen + 40,
        logs,
    );

    assert!(gateway.signal("-TERM").success());
    // What was journaled and not yet delivered goes out at the next start; then every reading is
    // stored once, in order.
    let (delivered, pending) = g.journaled_readings();
    let _gateway = g.spawn_gateway(1);
    let all = delivered.len() + pending.len();
    iotegrity_e2e::wait_for("the rest delivered after a restart", 60, || stored_readings(&g) >= all, logs);
    drop(_gateway);
    drop(service);
    crate::gateway::assert_exactly_once_in_order(&g);
}

/// An error and its causes on one line.
fn anyhow_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}
