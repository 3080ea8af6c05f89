//! Bytes as the TOML config file → `cli::config::parse`, merged with a few command-line flags
//! (chosen by the input's first byte) exactly as `switchyard --config FILE ...` does.

use std::ffi::OsString;
use std::io::Write;

/// Flag sets the file is merged with (flags win over the file).
const FLAGS: &[&[&str]] = &[
    &[],
    &["--http-port", "8080"],
    &[
        "--apps-file",
        "/tmp/apps.json",
        "--group",
        "external,internal",
    ],
    &[
        "poll",
        "--marathon",
        "http://marathon.mesos:8080",
        "--strict-mode",
    ],
    &["routes", "--apps-file", "apps.json", "--json"],
];

/// Drives one config file.
pub fn config_file(data: &[u8]) {
    let (flags, text) = match data.split_first() {
        Some((&first, rest)) => (FLAGS[usize::from(first) % FLAGS.len()], rest),
        None => (FLAGS[0], data),
    };
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(text).expect("the temporary file is written");
    let mut args: Vec<OsString> = vec!["switchyard".into(), "--config".into(), file.path().into()];
    args.extend(flags.iter().map(OsString::from));
    if let Ok(cli) = switchyard::cli::config::parse(args) {
        // What serve mode derives from the merged options must not panic either.
        let serve = &cli.serve;
        let _ = serve.routing.model_options();
        let _ = serve.routing.build_options();
        let _ = serve.limits.proxy_config();
    }
}
