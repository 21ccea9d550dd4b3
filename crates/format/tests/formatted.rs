//! Records the application formatted itself (`Record::formatted`: a Python
//! handler with a formatter set) are written as they are, whatever the
//! flusher's format.

use ringflush_format::{Entry, FormatSpec, Formatter};
use ringflush_ring::codec::Record;

fn line(format: &str, formatted: bool) -> String {
    let spec = FormatSpec {
        format: Some(format.to_string()),
        ..FormatSpec::default()
    };
    let mut f = Formatter::new(&spec, 0).unwrap();
    let mut out = Vec::new();
    let entry = Entry {
        created_ns: 1_700_000_000_000_000_000,
        pid: 1,
        record: Record {
            level: 20,
            logger: b"app",
            message: b"{\"event\": \"hi\"} \xff",
            formatted,
            ..Record::default()
        },
    };
    f.format(&entry, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn a_formatted_record_is_written_as_it_is() {
    for format in ["%(levelname)s %(name)s: %(message)s", "json", "json:ecs"] {
        assert_eq!(
            line(format, true),
            "{\"event\": \"hi\"} \u{fffd}\n",
            "{format}"
        );
    }
    assert_eq!(
        line("%(levelname)s %(name)s: %(message)s", false),
        "INFO app: {\"event\": \"hi\"} \u{fffd}\n"
    );
}
