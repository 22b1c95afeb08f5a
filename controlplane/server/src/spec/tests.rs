//! Tests of job spec parsing, checking and command lines.

use super::*;

fn field(body: &str) -> (Option<String>, String) {
    let e = JobSpec::from_json(body.as_bytes()).unwrap_err();
    (e.field, e.message)
}

fn invalid(spec: &JobSpec, snapshots: &Path) -> (Option<String>, String) {
    let e = spec.validate(snapshots).unwrap_err();
    (e.field, e.message)
}

#[test]
fn specs_parse_and_name_the_field_at_fault() {
    let load = JobSpec::from_json(br#"{"kind":"load","snapshot":"shop","target":"http://127.0.0.1:8080","rate":"max","duration":"1s"}"#).unwrap();
    let JobSpec::Load(spec) = &load else {
        panic!("{load:?}");
    };
    assert_eq!(spec.rate.as_deref(), Some("max"));
    assert_eq!(load.kind(), "load");
    // The stored form reads back.
    let text = serde_json::to_string(&load).unwrap();
    assert_eq!(JobSpec::from_json(text.as_bytes()).unwrap(), load);

    assert_eq!(field(r#"{"snapshot":"x"}"#).0.as_deref(), Some("kind"));
    let (f, m) = field(r#"{"kind":"deploy"}"#);
    assert_eq!(f.as_deref(), Some("kind"));
    assert!(m.contains("\"deploy\"") && m.contains("load"), "{m}");
    let (f, m) = field(r#"{"kind":"run","snapshot":"s","cmd":"x","port":80,"colour":"red"}"#);
    assert_eq!(f.as_deref(), Some("colour"), "{m}");
    let (f, m) = field(r#"{"kind":"run","snapshot":"s","port":80}"#);
    assert_eq!(f.as_deref(), Some("cmd"), "{m}");
    let (f, m) = field(r#"{"kind":"mirror","iface":"eth0","cmd":"x","port":70000}"#);
    assert_eq!(f.as_deref(), Some("port"), "{m}");
    assert_eq!(m, "out of range: expected 1 to 65535, found 70000");
    let (f, _) = field(r#"{"kind":"load","snapshot":"s","target":"t","connections":"many"}"#);
    assert_eq!(f.as_deref(), Some("connections"));
    assert_eq!(field("[1]").0, None);
    assert_eq!(field("{nope").0, None);
}

#[test]
fn values_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = dir.path();
    let run = |json: &str| JobSpec::from_json(json.as_bytes()).unwrap();
    let (f, m) = invalid(
        &run(r#"{"kind":"run","snapshot":"missing","cmd":"x","port":80}"#),
        snapshots,
    );
    assert_eq!(f.as_deref(), Some("snapshot"), "{m}");
    let (f, _) = invalid(
        &run(r#"{"kind":"load","snapshot":"../etc","target":"http://x"}"#),
        snapshots,
    );
    assert_eq!(f.as_deref(), Some("snapshot"));
    let mirror = |extra: &str| {
        run(&format!(
            r#"{{"kind":"mirror","iface":"eth0","cmd":"./server","port":8080{extra}}}"#
        ))
    };
    assert!(mirror("").validate(snapshots).is_ok());
    assert_eq!(
        invalid(&mirror(r#","duration":"soon""#), snapshots)
            .0
            .as_deref(),
        Some("duration")
    );
    let bad_port = run(r#"{"kind":"mirror","iface":"eth0","cmd":"x","port":0}"#);
    let (f, m) = invalid(&bad_port, snapshots);
    assert_eq!(
        (f.as_deref(), m.contains("out of range")),
        (Some("port"), true)
    );
    let bad_cmd = run(r#"{"kind":"mirror","iface":"eth0","cmd":"  ","port":1}"#);
    assert_eq!(invalid(&bad_cmd, snapshots).0.as_deref(), Some("cmd"));
    let bad_iface = run(r#"{"kind":"mirror","iface":"a/b","cmd":"x","port":1}"#);
    assert_eq!(invalid(&bad_iface, snapshots).0.as_deref(), Some("iface"));
}

#[test]
fn argv_follows_the_commands() {
    let spec = JobSpec::Load(LoadSpec {
        snapshot: "shop".into(),
        target: "http://127.0.0.1:9".into(),
        rate: Some("200%".into()),
        duration: Some("1s".into()),
        connections: Some(2),
        assert: Some("errors<=1%".into()),
        ignore: vec!["header:date".into()],
        keep_host: true,
        ..LoadSpec::default()
    });
    let argv = spec
        .argv(Path::new("/data/snapshots"), Path::new("/data/jobs/7"))
        .unwrap();
    assert_eq!(
        argv.join(" "),
        "replay /data/snapshots/shop --target http://127.0.0.1:9 --rate 200% --duration 1s \
         --connections 2 --assert errors<=1% --ignore header:date --keep-host \
         --report /data/jobs/7 --junit /data/jobs/7/junit.xml"
    );
    let mirror = JobSpec::Mirror(MirrorSpec {
        iface: "eth0".into(),
        port: 8080,
        cmd: "./server --port 8080".into(),
        ..MirrorSpec::default()
    });
    let argv = mirror.argv(Path::new("/s"), Path::new("/j")).unwrap();
    assert_eq!(
        argv,
        [
            "mirror",
            "--iface",
            "eth0",
            "--port",
            "8080",
            "--cmd",
            "./server --port 8080",
            "--report",
            "/j",
            "--junit",
            "/j/junit.xml"
        ]
    );
    let run = JobSpec::Run(RunSpec {
        snapshot: "/abs/snap".into(),
        cmd: "./app".into(),
        port: 80,
        env: vec!["A=1".into()],
        mock_latency: Some("recorded".into()),
        ..RunSpec::default()
    });
    let argv = run.argv(Path::new("/s"), Path::new("/j")).unwrap();
    assert_eq!(
        &argv[..6],
        ["run", "/abs/snap", "--cmd", "./app", "--port", "80"]
    );
    assert!(argv.windows(2).any(|w| w == ["--env", "A=1"]));
    assert!(argv.windows(2).any(|w| w == ["--mock-latency", "recorded"]));
    assert!(argv.windows(2).any(|w| w == ["--report", "/j"]));
}
