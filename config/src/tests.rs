//! Tests of loading whole files: defaults, overrides and every kind of problem.

use std::path::Path;
use std::time::Duration;

use super::*;

const EXAMPLE: &str = include_str!("../tapline.example.toml");

/// Parses `text` expecting failure and returns its problems.
fn problems(text: &str) -> Vec<Problem> {
    match Config::from_toml(text, "test.toml") {
        Ok(config) => panic!("expected problems, parsed {config:?}"),
        Err(err) => err.problems,
    }
}

/// The single problem `text` produces.
fn only_problem(text: &str) -> Problem {
    let mut all = problems(text);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

#[test]
fn example_file_parses_to_the_defaults() {
    assert_eq!(
        Config::from_toml(EXAMPLE, "tapline.example.toml"),
        Ok(Config::default())
    );
    // The plain derived serde path agrees.
    assert_eq!(
        toml::from_str::<Config>(EXAMPLE).unwrap(),
        Config::default()
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tapline.example.toml");
    assert_eq!(Config::load(&path), Ok(Config::default()));
}

#[test]
fn example_file_mentions_every_field() {
    let serialized = toml::to_string(&Config::default()).unwrap();
    for line in serialized.lines().filter(|l| l.contains(" = ")) {
        let key = line.split(" = ").next().unwrap();
        assert!(EXAMPLE.contains(&format!("\n{key} = ")), "{key} missing");
    }
    assert!(EXAMPLE.contains("\n# workers = "));
}

#[test]
fn empty_file_and_empty_sections_are_the_defaults() {
    assert_eq!(Config::from_toml("", "x"), Ok(Config::default()));
    let text = "[import]\n[reassembly]\n[http]\n[segments]\n";
    assert_eq!(Config::from_toml(text, "x"), Ok(Config::default()));
}

#[test]
fn defaults_round_trip_through_serialization() {
    let text = toml::to_string(&Config::default()).unwrap();
    assert_eq!(Config::from_toml(&text, "x"), Ok(Config::default()));
}

#[test]
fn overrides_are_applied_and_the_rest_keeps_defaults() {
    let text = r#"
[import]
workers = 8

[reassembly]
max_flows = 1000
max_buffered_per_direction = 65536
idle_timeout = "2m"
overlap = "last"

[http]
max_body_bytes = "512KB"

[segments]
capacity = "1GiB"
"#;
    let mut expected = Config::default();
    expected.import.workers = Some(8);
    expected.reassembly.max_flows = 1000;
    expected.reassembly.max_buffered_per_direction = ByteSize(65536);
    expected.reassembly.idle_timeout = Duration::from_secs(120);
    expected.reassembly.overlap = OverlapPolicy::Last;
    expected.http.max_body_bytes = ByteSize(512_000);
    expected.segments.capacity = ByteSize::gib(1);
    assert_eq!(Config::from_toml(text, "x"), Ok(expected.clone()));

    // Milliseconds parse too; 500ms is below the 1s minimum and is the only problem.
    let text = text.replace("\"2m\"", "\"500ms\"");
    let p = only_problem(&text);
    assert_eq!(p.field, "reassembly.idle_timeout");
    assert!(p.message.contains("found 500ms"), "{}", p.message);
}

#[test]
fn dotted_keys_and_inline_tables_work() {
    let text = "reassembly.max_flows = 7\nhttp = { max_pipelined = 3 }\n";
    let config = Config::from_toml(text, "x").unwrap();
    assert_eq!(config.reassembly.max_flows, 7);
    assert_eq!(config.http.max_pipelined, 3);
}

#[test]
fn unknown_field_names_the_section_and_the_known_fields() {
    let p = only_problem("[reassembly]\nmax_flows = 5\nidle_timout = \"3s\"\n");
    assert_eq!(p.origin, "test.toml");
    assert_eq!(p.field, "reassembly.idle_timout");
    assert!(
        p.message
            .starts_with("unknown field `idle_timout` in [reassembly], expected one of"),
        "{}",
        p.message
    );
    for known in ["`max_flows`", "`idle_timeout`", "`overlap`"] {
        assert!(p.message.contains(known), "{}", p.message);
    }
    assert!(p.message.ends_with("(line 3)"), "{}", p.message);
}

#[test]
fn unknown_sections_and_top_level_keys_are_reported() {
    let all = problems("workers = 4\n[imports]\nworkers = 4\n");
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0].field, "workers");
    assert!(
        all[0]
            .message
            .starts_with("unknown top-level key `workers`")
    );
    assert!(
        all[0]
            .message
            .contains("[import], [reassembly], [http], [segments]")
    );
    assert_eq!(all[1].field, "imports");
    assert!(all[1].message.starts_with("unknown section `imports`"));
    assert!(all[1].message.ends_with("(line 2)"), "{}", all[1].message);
}

#[test]
fn a_section_that_is_not_a_table_is_reported() {
    let p = only_problem("http = 5\n");
    assert_eq!(p.field, "http");
    assert!(
        p.message
            .contains("expected a table `[http]`, found integer"),
        "{}",
        p.message
    );
}

#[test]
fn wrong_type_names_the_field_and_the_expected_type() {
    let p = only_problem("[http]\nmax_pipelined = \"many\"\n");
    assert_eq!(p.field, "http.max_pipelined");
    assert!(
        p.message.contains("invalid type: string \"many\""),
        "{}",
        p.message
    );
    assert!(p.message.contains("expected usize"), "{}", p.message);
    assert!(p.message.ends_with("(line 2)"), "{}", p.message);

    let p = only_problem("[import]\nworkers = -3\n");
    assert_eq!(p.field, "import.workers");

    let p = only_problem("[segments]\ncapacity = 1.5\n");
    assert_eq!(p.field, "segments.capacity");
    assert!(
        p.message.contains("expected a number of bytes"),
        "{}",
        p.message
    );
}

#[test]
fn bad_size_string_lists_the_accepted_spellings() {
    let p = only_problem("[segments]\ncapacity = \"64 megs\"\n");
    assert_eq!(p.field, "segments.capacity");
    assert!(
        p.message.contains("invalid size \"64 megs\""),
        "{}",
        p.message
    );
    assert!(p.message.contains("\"64KiB\""), "{}", p.message);
    let p = only_problem("[reassembly]\nmax_buffered_total = -1\n");
    assert!(p.message.contains("must not be negative"), "{}", p.message);
}

#[test]
fn bad_duration_lists_the_accepted_spellings() {
    let p = only_problem("[reassembly]\nidle_timeout = \"2 minutes\"\n");
    assert_eq!(p.field, "reassembly.idle_timeout");
    assert!(
        p.message.contains("invalid duration \"2 minutes\""),
        "{}",
        p.message
    );
    assert!(p.message.contains("\"120s\""), "{}", p.message);
    // A bare number is ambiguous and refused.
    let p = only_problem("[reassembly]\nidle_timeout = 120\n");
    assert!(
        p.message.contains("expected a string like"),
        "{}",
        p.message
    );
}

#[test]
fn bad_overlap_policy_lists_the_variants() {
    let p = only_problem("[reassembly]\noverlap = \"middle\"\n");
    assert_eq!(p.field, "reassembly.overlap");
    assert!(p.message.contains("`first`"), "{}", p.message);
    assert!(p.message.contains("`last`"), "{}", p.message);
}

#[test]
fn multiple_problems_are_reported_together_in_file_order() {
    let text = r#"
[segments]
capacity = "512KiB"

[http]
max_pipelined = "x"
max_body_bytes = "2GiB"
colour = "blue"

[reassembly]
idle_timeout = "0s"
max_buffered_per_direction = "lots"

[import]
workers = 0
"#;
    let err = Config::from_toml(text, "conf/tapline.toml").unwrap_err();
    let fields: Vec<&str> = err.problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "segments.capacity",
            "http.max_pipelined",
            "http.max_body_bytes",
            "http.colour",
            "reassembly.idle_timeout",
            "reassembly.max_buffered_per_direction",
            "import.workers",
        ],
        "{err}"
    );
    let shown = err.to_string();
    assert_eq!(shown.lines().count(), 7, "{shown}");
    assert!(
        shown.lines().all(|l| l.starts_with("conf/tapline.toml: ")),
        "{shown}"
    );
    assert!(
        shown.contains(
            "conf/tapline.toml: segments.capacity: must be between 1MiB and 4GiB, found 512KiB (line 3)"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("conf/tapline.toml: import.workers: must be between 1 and 1024 (or unset for one per core), found 0"),
        "{shown}"
    );
}

#[test]
fn a_rejected_value_is_not_also_judged_by_cross_field_checks() {
    // max_buffered_total fails to parse; its default must not make the per-direction
    // limit look too large.
    let text = "[reassembly]\nmax_buffered_per_direction = \"1GiB\"\nmax_buffered_total = \"x\"\n";
    let p = only_problem(text);
    assert_eq!(p.field, "reassembly.max_buffered_total");
    // Without the bad value the cross-field check does apply.
    let p = only_problem("[reassembly]\nmax_buffered_per_direction = \"1GiB\"\n");
    assert_eq!(p.field, "reassembly.max_buffered_per_direction");
    assert!(
        p.message
            .contains("must not exceed reassembly.max_buffered_total")
    );
}

#[test]
fn syntax_errors_give_the_position_and_the_key() {
    let all = problems("[http]\nmax_pipelined = \n");
    assert!(!all.is_empty());
    let p = &all[0];
    assert_eq!(p.origin, "test.toml");
    assert_eq!(p.field, "http.max_pipelined", "{p:?}");
    assert!(p.message.starts_with("invalid TOML: "), "{}", p.message);
    assert!(p.message.contains("(line 2, column"), "{}", p.message);

    let all = problems("[http\n");
    assert!(all[0].message.contains("(line 1, column"), "{all:#?}");

    let all = problems("[http]\nmax_pipelined = 1\nmax_pipelined = 2\n");
    assert_eq!(all[0].field, "http.max_pipelined", "{all:#?}");
    assert!(all[0].message.contains("duplicate key"), "{all:#?}");
    assert!(all[0].message.contains("line 3"), "{all:#?}");
}

#[test]
fn missing_file_names_the_path() {
    let err = Config::load(Path::new("/nonexistent/tapline.toml")).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    let shown = err.to_string();
    assert!(
        shown.starts_with("/nonexistent/tapline.toml: cannot read the config file: "),
        "{shown}"
    );
}

#[test]
fn validate_checks_values_set_after_loading() {
    let mut config = Config::default();
    assert_eq!(config.validate("flags"), Ok(()));
    config.http.max_pipelined = 0;
    config.segments.capacity = ByteSize::gib(8);
    let err = config.validate("--flags").unwrap_err();
    assert_eq!(
        err.to_string(),
        "--flags: http.max_pipelined: must be at least 1\n\
         --flags: segments.capacity: must be between 1MiB and 4GiB, found 8GiB"
    );
}

#[test]
fn replay_section_is_left_to_the_replay_command() {
    let config = Config::from_toml("[replay]\nignore = [\"header:X-Id\"]\n", "t.toml").unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn serve_section_is_read_and_checked() {
    let text = "[serve]\nlisten = \"0.0.0.0:8443\"\ntoken_file = \"/etc/t\"\nmax_concurrent = 2\nmax_job_lifetime = \"0s\"\n";
    let config = Config::from_toml(text, "t.toml").unwrap();
    assert_eq!(config.serve.listen.to_string(), "0.0.0.0:8443");
    assert_eq!(config.serve.max_concurrent, 2);
    assert_eq!(config.serve.max_job_lifetime, Duration::ZERO);
    assert_eq!(
        config.serve.token_file.as_deref(),
        Some(Path::new("/etc/t"))
    );
    let all = problems(
        "[serve]\nmax_concurrent = 0\ntls_cert = \"c.pem\"\nclient_ca = \"ca.pem\"\nlisten = \"nowhere\"\nmax_body = \"1GiB\"\n",
    );
    let fields: Vec<&str> = all.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "serve.max_concurrent",
            "serve.listen",
            "serve.max_body",
            "serve.tls_key"
        ],
        "{all:#?}"
    );
}
