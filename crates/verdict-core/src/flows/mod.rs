//! Hubble flow records, one JSON object per line, read as a stream.
//!
//! Accepted envelopes (see docs/replay.md):
//!
//! * `observer.GetFlowsResponse` (`hubble observe -o json` / `-o jsonpb`,
//!   Hubble CLI >= 0.11) and `observer.ExportEvent` (Hubble exporter files):
//!   `{"flow":{…},"node_name":…,"time":…}`; third-party shippers' envelopes
//!   that carry a `flow` key are read the same way;
//! * the legacy bare `flow.Flow` object (Hubble CLI <= 0.10);
//! * lines without a flow (`node_status`, `lost_events`, `agent_event`,
//!   `debug_event`) are skipped and counted.
//!
//! Every field is optional (exporter field masks, older Hubble versions):
//! a missing field is never taken as its default value. Key names are the
//! proto field names (`IP`, `Type`, `source_port`, `SYN`), as Hubble's
//! JSON mapping writes them.
//!
//! No file system access: [`open`] wraps any reader (gzip detected by its
//! magic bytes) and [`Lines`] yields one line at a time, so memory does not
//! grow with the input.

pub mod flowgen;
pub mod replay;

use serde::de::IgnoredAny;
use serde::Deserialize;
use std::io::{BufRead, BufReader, Read};

/// A network endpoint as Hubble names it (`flow.Endpoint`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FlowEndpoint {
    #[serde(rename = "ID")]
    pub id: Option<u64>,
    pub identity: Option<u32>,
    pub cluster_name: Option<String>,
    pub namespace: Option<String>,
    pub labels: Vec<String>,
    pub pod_name: Option<String>,
    pub workloads: Vec<FlowWorkload>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FlowWorkload {
    pub name: String,
    pub kind: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FlowIp {
    pub source: Option<String>,
    pub destination: Option<String>,
    #[serde(rename = "ipVersion")]
    pub ip_version: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TcpFlags {
    #[serde(rename = "SYN")]
    pub syn: bool,
    #[serde(rename = "ACK")]
    pub ack: bool,
    #[serde(rename = "FIN")]
    pub fin: bool,
    #[serde(rename = "RST")]
    pub rst: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PortPair {
    pub source_port: Option<u32>,
    pub destination_port: Option<u32>,
    pub flags: Option<TcpFlags>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Icmp {
    #[serde(rename = "type")]
    pub icmp_type: Option<u32>,
    pub code: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FlowL4 {
    #[serde(rename = "TCP")]
    pub tcp: Option<PortPair>,
    #[serde(rename = "UDP")]
    pub udp: Option<PortPair>,
    #[serde(rename = "SCTP")]
    pub sctp: Option<PortPair>,
    #[serde(rename = "ICMPv4")]
    pub icmpv4: Option<Icmp>,
    #[serde(rename = "ICMPv6")]
    pub icmpv6: Option<Icmp>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EventType {
    #[serde(rename = "type")]
    pub kind: Option<u32>,
    pub sub_type: Option<u32>,
}

/// The fields of `flow.Flow` that replay needs. The same struct reads the
/// envelope: `flow` holds the inner flow of `GetFlowsResponse` /
/// `ExportEvent` lines, the other oneof members mark lines without a flow.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Flow {
    pub time: Option<String>,
    pub verdict: Option<String>,
    pub drop_reason: Option<u32>,
    pub drop_reason_desc: Option<String>,
    #[serde(rename = "IP")]
    pub ip: Option<FlowIp>,
    pub l4: Option<FlowL4>,
    pub source: Option<FlowEndpoint>,
    pub destination: Option<FlowEndpoint>,
    #[serde(rename = "Type")]
    pub flow_type: Option<String>,
    pub node_name: Option<String>,
    pub l7: Option<IgnoredAny>,
    pub event_type: Option<EventType>,
    pub traffic_direction: Option<String>,
    pub trace_observation_point: Option<String>,
    pub is_reply: Option<bool>,
    pub reply: Option<bool>,
    // Envelope members.
    pub flow: Option<Box<Flow>>,
    pub node_status: Option<IgnoredAny>,
    pub lost_events: Option<IgnoredAny>,
    pub agent_event: Option<IgnoredAny>,
    pub debug_event: Option<IgnoredAny>,
}

/// What one input line holds.
#[derive(Debug, Clone)]
pub enum Record {
    Flow(Box<Flow>),
    /// A line that is valid JSON but not a flow: the reason names what it is.
    NotAFlow(String),
    Empty,
}

impl Flow {
    fn has_flow_fields(&self) -> bool {
        self.verdict.is_some()
            || self.ip.is_some()
            || self.l4.is_some()
            || self.source.is_some()
            || self.destination.is_some()
            || self.event_type.is_some()
    }
}

/// Parses one line. A syntax error or a field of the wrong type is an
/// error (the caller reports it with file:line and reads on).
pub fn parse_line(line: &str) -> Result<Record, String> {
    let t = line.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\u{feff}');
    if t.is_empty() {
        return Ok(Record::Empty);
    }
    if !t.starts_with('{') {
        return Err("not a JSON object".to_string());
    }
    let outer: Flow = serde_json::from_str(t).map_err(|e| format!("malformed flow JSON: {e}"))?;
    if let Some(inner) = outer.flow {
        return Ok(Record::Flow(inner));
    }
    for (present, what) in [
        (outer.node_status.is_some(), "node_status"),
        (outer.lost_events.is_some(), "lost_events"),
        (outer.agent_event.is_some(), "agent_event"),
        (outer.debug_event.is_some(), "debug_event"),
    ] {
        if present {
            return Ok(Record::NotAFlow(format!("{what} event, not a flow")));
        }
    }
    if outer.has_flow_fields() {
        // The legacy bare flow object (Hubble CLI <= 0.10).
        return Ok(Record::Flow(Box::new(outer)));
    }
    Ok(Record::NotAFlow(
        "a JSON object without a flow (no `flow`, verdict, IP, l4 or endpoints)".to_string(),
    ))
}

/// Wraps a reader: gzip-compressed input (magic bytes `1f 8b`, as in
/// rotated Hubble exporter files) is decompressed on the fly.
pub fn open<R: Read + 'static>(reader: R) -> std::io::Result<Box<dyn BufRead>> {
    let mut buf = BufReader::with_capacity(64 * 1024, reader);
    let head = buf.fill_buf()?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        Ok(Box::new(BufReader::with_capacity(
            64 * 1024,
            flate2::bufread::MultiGzDecoder::new(buf),
        )))
    } else {
        Ok(Box::new(buf))
    }
}

/// The lines of a reader, one at a time, each with its 1-based number. A
/// line that is not UTF-8 is returned as an error for that line; an I/O
/// error ends the stream after being returned once.
pub struct Lines<R: BufRead> {
    reader: R,
    line: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R) -> Self {
        Lines {
            reader,
            line: 0,
            buf: Vec::with_capacity(4096),
            done: false,
        }
    }
}

/// One line read: its number and its text, or why it could not be read.
pub type LineResult = (usize, Result<String, String>);

impl<R: BufRead> Iterator for Lines<R> {
    type Item = LineResult;

    fn next(&mut self) -> Option<LineResult> {
        if self.done {
            return None;
        }
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(_) => {
                self.line += 1;
                if self.buf.last() == Some(&b'\n') {
                    self.buf.pop();
                    if self.buf.last() == Some(&b'\r') {
                        self.buf.pop();
                    }
                }
                let text = std::str::from_utf8(&self.buf)
                    .map(str::to_string)
                    .map_err(|e| format!("not UTF-8: {e}"));
                Some((self.line, text))
            }
            Err(e) => {
                self.done = true;
                Some((self.line + 1, Err(format!("read error: {e}"))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let r = parse_line(r#"{"flow":{"verdict":"DROPPED","l4":{"TCP":{"destination_port":80,"flags":{"SYN":true}}}},"node_name":"n"}"#).unwrap();
        let Record::Flow(f) = r else { panic!() };
        assert_eq!(f.verdict.as_deref(), Some("DROPPED"));
        let r =
            parse_line(r#"{"verdict":"FORWARDED","source":{"labels":["reserved:host"]}}"#).unwrap();
        assert!(matches!(r, Record::Flow(_)));
        let r = parse_line(r#"{"node_status":{"state_change":"NODE_CONNECTED"}}"#).unwrap();
        assert!(matches!(r, Record::NotAFlow(_)));
        assert!(matches!(parse_line("   ").unwrap(), Record::Empty));
        assert!(parse_line("{\"flow\":").is_err());
        assert!(parse_line("[1]").is_err());
    }

    #[test]
    fn gzip_is_detected() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"{\"flow\":{}}\nsecond\n").unwrap();
        let gz = enc.finish().unwrap();
        let lines: Vec<_> = Lines::new(open(std::io::Cursor::new(gz)).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].1.as_deref(), Ok("second"));
    }
}
