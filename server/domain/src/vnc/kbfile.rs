//! minimega's kb recording text format: one event a line, `<delta ns>:<event>`, with
//! events `KeyEvent,<true|false>,<keysym name or U+XXXX>`, `PointerEvent,<mask>,<x>,<y>`
//! and (in playback files) `LoadFile,<file>`; lines starting with `#` are comments.
//! The same event syntax, without the delta, is what `vnc inject` takes.

use std::fmt;

use super::keysym;
use super::rfb::Input;

/// One event of a kb file or of `vnc inject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A key or pointer event to send to the VM.
    Input(Input),
    /// Play another file here (relative to the current file's directory).
    LoadFile(String),
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Input(Input::Key { down, keysym }) => {
                let name = keysym::name_of(*keysym).unwrap_or_else(|| go_unicode(*keysym));
                write!(f, "KeyEvent,{down},{name}")
            }
            Event::Input(Input::Pointer { mask, x, y }) => {
                write!(f, "PointerEvent,{mask},{x},{y}")
            }
            Event::LoadFile(file) => write!(f, "LoadFile,{file}"),
        }
    }
}

/// Go's `%U` of a code point: `U+` and at least four upper-case hex digits.
fn go_unicode(k: u32) -> String {
    format!("U+{k:04X}")
}

impl Event {
    /// Parses an event (no delta): `KeyEvent,true,a`, `PointerEvent,1,10,20`,
    /// `LoadFile,other.kb`.
    pub fn parse(s: &str) -> Result<Event, String> {
        let s = s.trim();
        let invalid = || "invalid event specified".to_string();
        let mut parts = s.splitn(2, ',');
        let kind = parts.next().unwrap_or_default();
        let rest = parts.next().ok_or_else(invalid)?;
        match kind {
            "KeyEvent" => {
                let (down, key) = rest.split_once(',').ok_or_else(invalid)?;
                let down = match down {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid()),
                };
                let keysym = keysym::keysym_of(key)
                    .or_else(|| {
                        let hex = key.strip_prefix("U+")?;
                        u32::from_str_radix(hex, 16).ok()
                    })
                    .ok_or_else(|| format!("unknown key: `{key}`"))?;
                Ok(Event::Input(Input::Key { down, keysym }))
            }
            "PointerEvent" => {
                let nums: Vec<&str> = rest.split(',').collect();
                let [mask, x, y] = nums.as_slice() else {
                    return Err(invalid());
                };
                let (Ok(mask), Ok(x), Ok(y)) = (mask.parse(), x.parse(), y.parse()) else {
                    return Err(invalid());
                };
                Ok(Event::Input(Input::Pointer { mask, x, y }))
            }
            "LoadFile" if !rest.is_empty() => Ok(Event::LoadFile(rest.to_string())),
            _ => Err(invalid()),
        }
    }
}

/// One line of a kb file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// An event `delta_ns` nanoseconds after the previous one.
    Event {
        /// Wait before it, ns.
        delta_ns: u64,
        /// The event.
        event: Event,
    },
    /// A comment (`#…`), logged when played.
    Comment(String),
    /// An empty line.
    Blank,
}

impl Line {
    /// Parses one line; errors say what is wrong with it.
    pub fn parse(line: &str) -> Result<Line, String> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return Ok(Line::Blank);
        }
        if let Some(c) = line.strip_prefix('#') {
            return Ok(Line::Comment(c.trim_start_matches(':').trim().to_string()));
        }
        let (delta, event) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed vnc statement: {line}"))?;
        let delta_ns = delta
            .trim()
            .parse()
            .map_err(|_| format!("malformed delay in vnc statement: {line}"))?;
        Ok(Line::Event {
            delta_ns,
            event: Event::parse(event)?,
        })
    }

    /// The line as a recording writes it (with its newline).
    pub fn event(delta_ns: u64, event: &Event) -> String {
        format!("{delta_ns}:{event}\n")
    }
}

/// The sum of the deltas of a file's events: how long it plays (without LoadFiles).
pub fn duration_ns(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| match Line::parse(l) {
            Ok(Line::Event { delta_ns, .. }) => Some(delta_ns),
            _ => None,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(down: bool, keysym: u32) -> Event {
        Event::Input(Input::Key { down, keysym })
    }

    #[test]
    fn minimega_lines_parse() {
        let text = "\
# a comment
1000000000:KeyEvent,true,a
250:KeyEvent,false,a
12:PointerEvent,1,640,480
5:KeyEvent,true,Shift_L
7:KeyEvent,true,U+FE03

9:LoadFile,login.kb
";
        let lines: Vec<Line> = text.lines().map(|l| Line::parse(l).unwrap()).collect();
        assert_eq!(lines[0], Line::Comment("a comment".into()));
        assert_eq!(
            lines[1],
            Line::Event {
                delta_ns: 1_000_000_000,
                event: key(true, 0x61)
            }
        );
        assert_eq!(
            lines[3],
            Line::Event {
                delta_ns: 12,
                event: Event::Input(Input::Pointer {
                    mask: 1,
                    x: 640,
                    y: 480
                })
            }
        );
        assert_eq!(
            lines[5],
            Line::Event {
                delta_ns: 7,
                event: key(true, 0xfe03)
            }
        );
        assert_eq!(lines[6], Line::Blank);
        assert_eq!(
            lines[7],
            Line::Event {
                delta_ns: 9,
                event: Event::LoadFile("login.kb".into())
            }
        );
        assert_eq!(duration_ns(text), 1_000_000_000 + 250 + 12 + 5 + 7 + 9);
    }

    #[test]
    fn written_lines_read_back() {
        let events = [
            key(true, 0x61),
            key(false, 0xff0d),
            key(true, 0x1234),
            key(true, 0x10fe03),
            Event::Input(Input::Pointer {
                mask: 4,
                x: 0,
                y: 65535,
            }),
            Event::LoadFile("dir/other.kb".into()),
        ];
        for (i, e) in events.iter().enumerate() {
            let line = Line::event(i as u64 * 1000, e);
            assert!(line.ends_with('\n'));
            assert_eq!(
                Line::parse(&line).unwrap(),
                Line::Event {
                    delta_ns: i as u64 * 1000,
                    event: e.clone()
                },
                "{line}"
            );
        }
        assert_eq!(Line::event(5, &key(true, 0x61)), "5:KeyEvent,true,a\n");
        assert_eq!(
            Line::event(5, &key(false, 0x1234)),
            "5:KeyEvent,false,U+1234\n"
        );
    }

    #[test]
    fn bad_events_are_refused_with_minimega_texts() {
        assert_eq!(
            Event::parse("KeyEvent,true,NoSuchKey").unwrap_err(),
            "unknown key: `NoSuchKey`"
        );
        for bad in [
            "KeyEvent,yes,a",
            "PointerEvent,1,2",
            "PointerEvent,1,2,x",
            "PointerEvent,256,2,3",
            "Typo,1",
            "LoadFile,",
            "",
        ] {
            assert_eq!(
                Event::parse(bad).unwrap_err(),
                "invalid event specified",
                "{bad}"
            );
        }
        assert!(Line::parse("x:KeyEvent,true,a").is_err());
        assert!(Line::parse("KeyEvent,true,a").is_err());
    }
}
