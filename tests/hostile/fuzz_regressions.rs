//! Replays every committed fuzz input — the hand-made seeds and every crash a fuzzer found —
//! through the functions the fuzz targets call (`fuzz/src/drive/`), so `cargo test` keeps fixed
//! bugs fixed without a fuzzer (as Envoy replays its corpora). Fuzzing itself: `scripts/fuzz.sh`.

#[path = "../../fuzz/src/drive/mod.rs"]
mod drive;

use std::path::PathBuf;

use arbitrary::{Arbitrary, Unstructured};

/// The files of `fuzz/corpus/<target>/`, sorted by name; there must be some.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    files
        .into_iter()
        .map(|path| {
            let data = std::fs::read(&path).unwrap();
            (path, data)
        })
        .collect()
}

#[test]
fn marathon_apps_corpus() {
    for (path, data) in corpus("marathon_apps") {
        eprintln!("{}", path.display());
        drive::marathon_apps(&data);
    }
}

#[test]
fn labels_corpus() {
    let mut decoded = 0;
    for (path, data) in corpus("labels") {
        eprintln!("{}", path.display());
        // As libfuzzer-sys decodes a typed input; one it cannot decode is not run.
        if let Ok(input) = drive::LabelsInput::arbitrary_take_rest(Unstructured::new(&data)) {
            drive::labels(&input);
            decoded += 1;
        }
    }
    assert!(decoded > 0, "no labels input decoded");
}

#[test]
fn event_stream_corpus() {
    for (path, data) in corpus("event_stream") {
        eprintln!("{}", path.display());
        drive::event_stream(&data);
    }
}

#[test]
fn config_file_corpus() {
    for (path, data) in corpus("config_file") {
        eprintln!("{}", path.display());
        drive::config_file(&data);
    }
}

#[test]
fn http_connection_corpus() {
    for (path, data) in corpus("http_connection") {
        eprintln!("{}", path.display());
        drive::http_connection(&data);
    }
}

/// The same inputs through the native HTTP/1 path (and hyper, where it hands over).
#[test]
fn http_connection_corpus_native() {
    for (path, data) in corpus("http_connection") {
        eprintln!("{}", path.display());
        drive::http_connection_native(&data);
    }
}

/// The harness is live: a plain request through it reaches the backend and comes back, on
/// either path.
#[test]
fn http_connection_reaches_the_live_backend() {
    for drive in [drive::http_connection, drive::http_connection_native] {
        let response =
            drive(b"vGET / HTTP/1.1\r\nHost: live.example.test\r\nConnection: close\r\n\r\n");
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with("live\n"), "{text}");
        let response = drive(b"vGET / HTTP/1.1\r\nHost: down.example.test\r\n\r\n");
        let text = String::from_utf8_lossy(&response);
        // Refused: 502, or 503 once the endpoint is ejected.
        assert!(
            text.starts_with("HTTP/1.1 502") || text.starts_with("HTTP/1.1 503"),
            "{text}"
        );
    }
}
