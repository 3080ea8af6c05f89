//! Logs on stderr: text lines for people, JSON objects (one a line) for collectors.
//!
//! Access-log lines (target [`ACCESS`]) are written here rather than by tracing's formatters,
//! which leave out a field that has no value: every field the line declares is written, in the
//! order declared, `-` (text) or `null` (JSON) where there is none, so that every line has the
//! same fields with the same JSON types. Every other event goes through tracing's formatters
//! as it always did.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// The target of access-log events (`RUST_LOG=access=off` silences them).
pub const ACCESS: &str = "access";

/// Installs the process's logger: JSON or text, at `level` unless `RUST_LOG` says otherwise.
pub fn init(json: bool, level: Level) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level.as_str()));
    // Colours only for a person at a terminal, not for log collectors.
    let ansi = !json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing::subscriber::set_global_default(subscriber(json, filter, ansi, std::io::stderr))
        .unwrap_or_else(|_| eprintln!("switchyard: a logger was already installed"));
}

/// The logger [`init`] installs, writing to `writer`.
pub fn subscriber<W>(
    json: bool,
    filter: EnvFilter,
    ansi: bool,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if json {
        let format = AccessLines {
            other: Format::default().json(),
            json: true,
        };
        Box::new(builder.json().event_format(format).finish())
    } else {
        let format = AccessLines {
            other: Format::default(),
            json: false,
        };
        Box::new(builder.with_ansi(ansi).event_format(format).finish())
    }
}

/// Access-log events written field by field; `other` writes the rest.
struct AccessLines<F> {
    other: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for AccessLines<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if meta.target() != ACCESS {
            return self.other.format_event(ctx, writer, event);
        }
        let mut fields = Fields(
            meta.fields()
                .iter()
                .map(|f| (f.name(), Value::Missing))
                .collect(),
        );
        event.record(&mut fields);
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        if self.json {
            write_json(&mut writer, &timestamp, meta.level(), &fields)
        } else {
            write_text(&mut writer, &timestamp, meta.level(), &fields)
        }
    }
}

/// `2026-12-07T15:00:00.000000Z  INFO access: name=value …`: tracing's text layout.
fn write_text(w: &mut Writer<'_>, timestamp: &str, level: &Level, fields: &Fields) -> fmt::Result {
    write!(w, "{timestamp} {level:>5} {ACCESS}:")?;
    for (name, value) in &fields.0 {
        write!(w, " {name}=")?;
        match value {
            Value::Missing => w.write_char('-')?,
            Value::U64(n) => write!(w, "{n}")?,
            Value::I64(n) => write!(w, "{n}")?,
            Value::F64(n) => write!(w, "{n}")?,
            Value::Bool(b) => write!(w, "{b}")?,
            // Quoted, with quotes, backslashes and control characters escaped: a client's
            // bytes cannot forge a field or a line.
            Value::Str(s) => write!(w, "{s:?}")?,
            Value::Shown(s) => w.write_str(s)?,
        }
    }
    writeln!(w)
}

/// `{"timestamp":…,"level":"INFO","fields":{…},"target":"access"}`: tracing's JSON layout.
fn write_json(w: &mut Writer<'_>, timestamp: &str, level: &Level, fields: &Fields) -> fmt::Result {
    let string = |s: &str| serde_json::to_string(s).map_err(|_| fmt::Error);
    write!(
        w,
        "{{\"timestamp\":{},\"level\":{},\"fields\":{{",
        string(timestamp)?,
        string(level.as_str())?
    )?;
    for (i, (name, value)) in fields.0.iter().enumerate() {
        let value = match value {
            Value::Missing => serde_json::Value::Null,
            Value::U64(n) => (*n).into(),
            Value::I64(n) => (*n).into(),
            // Not finite: null.
            Value::F64(n) => (*n).into(),
            Value::Bool(b) => (*b).into(),
            Value::Str(s) | Value::Shown(s) => s.as_str().into(),
        };
        let comma = if i == 0 { "" } else { "," };
        write!(w, "{comma}{}:{value}", string(name)?)?;
    }
    writeln!(w, "}},\"target\":{}}}", string(ACCESS)?)
}

/// An event's fields in the order declared, each with its value or none.
struct Fields(Vec<(&'static str, Value)>);

enum Value {
    Missing,
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    /// A string as recorded: quoted in text.
    Str(String),
    /// A value recorded through `Display` or `Debug`: bare in text.
    Shown(String),
}

impl Fields {
    fn set(&mut self, field: &Field, value: Value) {
        if let Some((_, slot)) = self.0.iter_mut().find(|(name, _)| *name == field.name()) {
            *slot = value;
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field, Value::F64(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field, Value::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field, Value::U64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field, Value::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, Value::Str(value.to_owned()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field, Value::Shown(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Captures what the logger writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(json: bool) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = subscriber(json, EnvFilter::new("info"), false, move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let none: Option<u64> = None;
            tracing::info!(
                target: ACCESS,
                client = display("10.0.0.1:5000"),
                status = 200u16,
                bytes = none,
                agent = "a \"quoted\"\nagent",
                duration_ms = 1.5,
            );
            tracing::info!(other = 1, "not an access line");
        });
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn access_lines_carry_every_field_typed() {
        let text = logged(true);
        let mut lines = text.lines();
        let access: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(access["target"], "access");
        assert_eq!(access["level"], "INFO");
        assert_eq!(
            access["fields"],
            serde_json::json!({"client": "10.0.0.1:5000", "status": 200, "bytes": null,
                "agent": "a \"quoted\"\nagent", "duration_ms": 1.5})
        );
        let other: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(other["fields"]["message"], "not an access line");
    }

    #[test]
    fn text_access_lines_show_a_dash_for_no_value_and_quote_client_strings() {
        let text = logged(false);
        let access = text.lines().next().unwrap();
        assert!(
            access.ends_with(
                " INFO access: client=10.0.0.1:5000 status=200 bytes=- agent=\"a \\\"quoted\\\"\\nagent\" duration_ms=1.5"
            ),
            "{access}"
        );
        assert!(text.lines().nth(1).unwrap().contains("not an access line"));
    }
}
