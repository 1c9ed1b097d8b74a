//! The one place certplane reads YAML.
//!
//! A file is first walked as a stream of parser events (granit, the parser
//! under serde-saphyr): that splits it into documents, finds each document's
//! `apiVersion` and `kind`, and records the position of every key and
//! sequence item by dotted path. Each document is then deserialized on its
//! own with serde-saphyr, always through [`deserialize`], which sets
//! `strict_booleans` (so `NO` is a string, not `false`) and reports every
//! error with its line and column in the file. A cluster manifest written
//! plainly is not deserialized again: its value is built from the split's
//! own events ([`value`]).

mod value;

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_saphyr::granit_parser::{Event, Marker, Parser, ScalarStyle};

/// A 1-based (line, column) position.
pub type Pos = (usize, usize);

/// One non-empty document of a YAML stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDoc {
    /// Byte range of the document in the file's text.
    pub start: usize,
    /// End of the byte range (exclusive).
    pub end: usize,
    /// Position of the document's first byte (for `---` documents, the marker).
    pub start_pos: Pos,
    /// Position of the document's root node.
    pub root_pos: Pos,
    /// Whether the root node is a mapping.
    pub root_is_mapping: bool,
    /// Top-level scalar values by key (`apiVersion`, `kind`...).
    pub top_scalars: BTreeMap<String, (String, Pos)>,
    /// Position of every key and sequence item, by dotted path.
    pub fields: BTreeMap<String, Pos>,
    /// Where the text of each literal block value (`key: |`) starts.
    pub blocks: BTreeMap<String, Pos>,
    /// The document's value, built while it was split when it is a
    /// cluster manifest written plainly ([`value`]); read once.
    pub value: Built,
}

/// A value built while splitting, taken by the one job that loads its
/// document (the documents of a file are shared between the jobs). One
/// word for a document with none (certplane's own: 10,000 of them at
/// scale, alive together while their file loads).
#[derive(Default)]
pub struct Built(Option<Box<std::sync::Mutex<Option<serde_json::Value>>>>);

/// Says whether a value is held, never what it is: a manifest may be a
/// Secret.
impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.0.as_ref().is_some_and(|cell| {
            cell.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_some()
        });
        f.write_str(if held { "Built(..)" } else { "Built(None)" })
    }
}

impl Built {
    fn new(value: Option<serde_json::Value>) -> Built {
        Built(value.map(|v| Box::new(std::sync::Mutex::new(Some(v)))))
    }

    /// The value, if it was built and not taken yet.
    pub fn take(&self) -> Option<serde_json::Value> {
        let cell = self.0.as_ref()?;
        cell.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    fn get(&self) -> Option<serde_json::Value> {
        let cell = self.0.as_ref()?;
        cell.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Clone for Built {
    fn clone(&self) -> Built {
        Built::new(self.get())
    }
}

impl PartialEq for Built {
    fn eq(&self, other: &Built) -> bool {
        self.get() == other.get()
    }
}

impl Eq for Built {}

impl RawDoc {
    /// The value of a top-level scalar key with its position.
    pub fn top(&self, key: &str) -> Option<(&str, Pos)> {
        self.top_scalars.get(key).map(|(v, p)| (v.as_str(), *p))
    }

    /// Moves the document `bytes` and `lines` further into the file (it was
    /// split from a piece that starts there, at column 1).
    fn shift(&mut self, bytes: usize, lines: usize) {
        self.start += bytes;
        self.end += bytes;
        for p in [&mut self.start_pos, &mut self.root_pos]
            .into_iter()
            .chain(self.top_scalars.values_mut().map(|(_, p)| p))
            .chain(self.fields.values_mut())
            .chain(self.blocks.values_mut())
        {
            p.0 += lines;
        }
    }
}

/// A YAML error with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// What the parser or deserializer said (without its position).
    pub message: String,
    /// Where, in the file.
    pub pos: Pos,
}

fn pos(m: &Marker) -> Pos {
    (m.line(), m.col() + 1)
}

fn byte_offset(text: &str, m: &Marker) -> usize {
    match m.byte_offset() {
        Some(b) => b.min(text.len()),
        None => text
            .char_indices()
            .nth(m.index())
            .map(|(b, _)| b)
            .unwrap_or(text.len()),
    }
}

/// One open collection while walking events.
enum Frame {
    /// A mapping at `path`; `key` is the path of the key whose value comes
    /// next with the key's position (`None` for a key without one: an
    /// alias or a collection), `None` when a key is expected.
    Map {
        path: String,
        key: Option<(String, Option<Pos>)>,
    },
    /// A sequence at `path`; `next` is the index of the next item.
    Seq { path: String, next: usize },
    /// A collection used as a mapping key (rare; its content is not recorded).
    Skip,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        return key.to_string();
    }
    let mut joined = String::with_capacity(path.len() + 1 + key.len());
    joined.push_str(path);
    joined.push('.');
    joined.push_str(key);
    joined
}

/// Where the next node goes and what it is called, updating the parent frame.
enum Slot {
    /// A node at this path (a mapping value or sequence item), recorded at
    /// the position given (its key's, for a mapping value) or its own.
    Value(String, Option<Pos>),
    /// A mapping key (its path is made by the caller, from its text).
    Key,
    /// Inside a key collection.
    Skipped,
    /// The document's root.
    Root,
}

fn next_slot(stack: &mut [Frame]) -> Slot {
    match stack.last_mut() {
        None => Slot::Root,
        Some(Frame::Skip) => Slot::Skipped,
        Some(Frame::Map { key, .. }) => match key.take() {
            Some((path, at)) => Slot::Value(path, at),
            None => Slot::Key,
        },
        Some(Frame::Seq { path, next }) => {
            let p = format!("{path}[{next}]");
            *next += 1;
            Slot::Value(p, None)
        }
    }
}

/// Sets the key of the mapping on top of `stack` (whose value comes next).
fn set_key(stack: &mut [Frame], name: &str, at: Option<Pos>) {
    if let Some(Frame::Map { path, key }) = stack.last_mut() {
        *key = Some((join(path, name), at));
    }
}

/// Splits a YAML stream into its non-empty documents and maps their fields.
/// A syntax error anywhere stops the walk (the rest of the file cannot be
/// trusted).
pub fn split(text: &str) -> Result<Vec<RawDoc>, YamlError> {
    let mut docs = Vec::new();
    let mut current: Option<RawDoc> = None;
    let mut stack: Vec<Frame> = Vec::new();
    let mut build: Option<value::Build> = None;
    for ev in Parser::new_from_str(text) {
        let (event, span) = ev.map_err(|e| {
            let message = e.info();
            let at = pos(e.marker());
            YamlError {
                pos: if message.contains("tab") {
                    tab_at(text, at).unwrap_or(at)
                } else {
                    at
                },
                message,
            }
        })?;
        let at = pos(&span.start);
        if let Some(b) = build.as_mut()
            && b.event(&event).is_none()
        {
            build = None;
        }
        match event {
            Event::DocumentStart(..) => {
                stack.clear();
                build = Some(value::Build::default());
                current = Some(RawDoc {
                    start: byte_offset(text, &span.start),
                    end: text.len(),
                    start_pos: at,
                    root_pos: at,
                    root_is_mapping: false,
                    top_scalars: BTreeMap::new(),
                    fields: BTreeMap::new(),
                    blocks: BTreeMap::new(),
                    value: Built::default(),
                });
            }
            Event::DocumentEnd => {
                let built = build.take().and_then(value::Build::finish);
                if let Some(mut doc) = current.take() {
                    doc.value = Built::new(built);
                    doc.end = byte_offset(text, &span.start).max(doc.start);
                    // An empty document (`---` alone, or only comments) has a
                    // root that is an empty plain scalar: skip it.
                    let empty = !doc.root_is_mapping && !doc.fields.contains_key("");
                    if !empty {
                        doc.fields.remove("");
                        docs.push(doc);
                    }
                }
            }
            Event::Scalar(value, style, _, _) => {
                let Some(doc) = current.as_mut() else {
                    continue;
                };
                match next_slot(&mut stack) {
                    Slot::Root => {
                        let is_empty = style == ScalarStyle::Plain && span.start == span.end;
                        if !is_empty {
                            // A non-empty scalar document: recorded so that it is
                            // not skipped as empty, reported as "not a mapping".
                            doc.fields.insert(String::new(), at);
                            doc.root_pos = at;
                        }
                    }
                    Slot::Key => set_key(&mut stack, &value, Some(at)),
                    Slot::Value(path, key_at) => {
                        if style == ScalarStyle::Literal && !value.trim().is_empty() {
                            // The span starts at the first non-blank line of
                            // the text; blank lines before it are part of it.
                            let blank = value.chars().take_while(|&c| c == '\n').count();
                            doc.blocks
                                .entry(path.clone())
                                .or_insert((at.0.saturating_sub(blank).max(1), at.1));
                        }
                        // Scalar values of top-level keys are the header.
                        if stack.len() == 1 && !path.contains(['.', '[']) {
                            doc.top_scalars
                                .entry(path.clone())
                                .or_insert((value.into_owned(), at));
                        }
                        doc.fields.entry(path).or_insert(key_at.unwrap_or(at));
                    }
                    Slot::Skipped => {}
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(event, Event::MappingStart(..));
                let Some(doc) = current.as_mut() else {
                    continue;
                };
                let frame_path = match next_slot(&mut stack) {
                    Slot::Root => {
                        doc.root_pos = at;
                        doc.root_is_mapping = is_map;
                        doc.fields.insert(String::new(), at);
                        Some(String::new())
                    }
                    Slot::Value(path, key_at) => {
                        doc.fields
                            .entry(path.clone())
                            .or_insert(key_at.unwrap_or(at));
                        Some(path)
                    }
                    Slot::Key | Slot::Skipped => None,
                };
                stack.push(match (frame_path, is_map) {
                    (None, _) => Frame::Skip,
                    (Some(path), true) => Frame::Map { path, key: None },
                    (Some(path), false) => Frame::Seq { path, next: 0 },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let was_skip = matches!(stack.pop(), Some(Frame::Skip));
                // A collection used as a key: its value comes next, under a
                // name nobody can refer to.
                if was_skip {
                    set_key(&mut stack, "?", None);
                }
            }
            Event::Alias(_) | Event::UnresolvedAlias(_) => {
                let Some(doc) = current.as_mut() else {
                    continue;
                };
                match next_slot(&mut stack) {
                    Slot::Root => {
                        doc.fields.insert(String::new(), at);
                    }
                    Slot::Value(path, key_at) => {
                        doc.fields.entry(path).or_insert(key_at.unwrap_or(at));
                    }
                    Slot::Key => set_key(&mut stack, "*", None),
                    Slot::Skipped => {}
                }
            }
            _ => {}
        }
    }
    Ok(docs)
}

/// Where a piece of a stream starts: its byte offset and the line breaks
/// before it.
pub type PieceStart = (usize, usize);

/// Where a long stream can be cut into pieces that each [`split`] alone
/// exactly as they split within the stream, so that the pieces can be split
/// in parallel ([`split_piece`]): at the start of a line that is a document
/// marker (`---`, then a blank or the end of the line), at least `piece`
/// bytes apart. A document marker at column 0 ends whatever came before it
/// (a plain or block scalar ends there; a quoted scalar or a flow
/// collection open across it is a syntax error in the stream and in the
/// piece alike). One piece, `[(0, 0)]`, for a stream shorter than two
/// pieces, and for one with a directive (`%` at column 0: it belongs to
/// the document after it), a byte order mark after its start or a lone
/// carriage return (a line break this cut would not count).
pub fn cut(text: &str, piece: usize) -> Vec<PieceStart> {
    let whole = vec![(0, 0)];
    if text.len() < piece.saturating_mul(2) {
        return whole;
    }
    let mut starts = vec![(0, 0)];
    let (mut at, mut breaks, mut last) = (0, 0, 0);
    for line in text.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let body = body.strip_suffix('\r').unwrap_or(body);
        let unmarked = if at == 0 {
            body.strip_prefix('\u{feff}').unwrap_or(body)
        } else {
            body
        };
        if unmarked.starts_with(['%', '\u{feff}']) || body.contains('\r') {
            return whole;
        }
        let marker = body
            .strip_prefix("---")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\0']));
        if marker && at - last >= piece {
            starts.push((at, breaks));
            last = at;
        }
        at += line.len();
        breaks += 1;
    }
    starts
}

/// [`split`] of the piece of `text` from `start` (as [`cut`] gives it) to
/// `end`, with the documents' offsets and positions those of `text`.
/// `None` when the piece is not valid YAML: the stream is not either, and
/// [`split`] of the whole stream says where, exactly.
pub fn split_piece(text: &str, start: PieceStart, end: usize) -> Option<Vec<RawDoc>> {
    let (bytes, lines) = start;
    let mut docs = split(text.get(bytes..end)?).ok()?;
    for doc in &mut docs {
        doc.shift(bytes, lines);
    }
    Some(docs)
}

/// Where the tab a tab error is about is: the first tab in the indentation
/// of a line, from the line the parser names on. The parser names the
/// column after the tab ("tabs disallowed within this context"), or the
/// start of the plain scalar whose next line is indented with a tab ("while
/// scanning a plain scalar, found a tab"): a line or more before it.
fn tab_at(text: &str, (line, _): Pos) -> Option<Pos> {
    text.split('\n')
        .enumerate()
        .skip(line.saturating_sub(1))
        .find_map(|(i, l)| {
            let indent = &l[..l.len() - l.trim_start_matches([' ', '\t']).len()];
            indent
                .chars()
                .position(|c| c == '\t')
                .map(|col| (i + 1, col + 1))
        })
}

/// Deserializes one document of `text` (as split by [`split`]) into `T`.
/// This is certplane's only call into serde-saphyr: `strict_booleans` is
/// always on, duplicate keys are errors, and positions are in the file.
pub fn deserialize<T: DeserializeOwned>(text: &str, doc: &RawDoc) -> Result<T, YamlError> {
    let slice = &text[doc.start..doc.end];
    let options = serde_saphyr::options! {
        strict_booleans: true,
        with_snippet: false,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
    };
    serde_saphyr::from_str_with_options::<T>(slice, options).map_err(|e| {
        let pos = match e.location() {
            Some(l) if l.line() > 0 => {
                let line = l.line() as usize;
                let column = (l.column() as usize).max(1);
                if line == 1 {
                    (doc.start_pos.0, doc.start_pos.1 - 1 + column)
                } else {
                    (doc.start_pos.0 + line - 1, column)
                }
            }
            _ => doc.root_pos,
        };
        YamlError {
            message: strip_position(&e.to_string()),
            pos,
        }
    })
}

/// The most errors reported for one document.
const MAX_ERRORS: usize = 50;

/// [`deserialize`], with every error of the document rather than the
/// first: after each error, the key it is at (or the key of the value it is
/// at), with everything under it, is blanked out of a copy of the text and
/// the document read again, so that one mistake does not hide the next.
/// Blanking keeps every byte offset, so positions stay those of the file.
/// It stops at an error nothing can be blanked for (a missing field, a
/// value inside a flow collection), at one caused by the blanking (a
/// required key blanked is then missing), and after [`MAX_ERRORS`].
pub fn deserialize_all<T: DeserializeOwned>(text: &str, doc: &RawDoc) -> Result<T, Vec<YamlError>> {
    let first = match deserialize::<T>(text, doc) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let mut errors = vec![first];
    let mut masked = text.to_string();
    let mut blanked: Vec<String> = Vec::new();
    while errors.len() < MAX_ERRORS {
        let Some(last) = errors.last() else { break };
        if last.message.starts_with("missing field") {
            break;
        }
        let Some((range, key)) = extent(&masked, doc, last.pos) else {
            break;
        };
        blank(&mut masked, range);
        blanked.push(key);
        if split(&masked).is_err() {
            break;
        }
        match deserialize::<T>(&masked, doc) {
            Ok(_) => break,
            Err(e) => {
                let caused = e
                    .message
                    .strip_prefix("missing field ")
                    .is_some_and(|f| blanked.iter().any(|k| k == f.trim_matches('`')));
                if caused || errors.iter().any(|x| x.pos == e.pos) {
                    break;
                }
                errors.push(e);
            }
        }
    }
    Err(errors)
}

/// The byte offset of a 1-based (line, column) in `text`, if it is there.
fn offset_of(text: &str, (line, column): Pos) -> Option<usize> {
    let start = if line == 1 {
        0
    } else {
        text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)?
    };
    let line_text = text[start..].split('\n').next().unwrap_or_default();
    let within = line_text
        .char_indices()
        .nth(column - 1)
        .map_or(line_text.len(), |(b, _)| b);
    Some(start + within)
}

/// What to blank for an error at `at`: the byte range of the block key
/// (or block sequence item) written there, or of the key of the value
/// written there, with everything indented under it; and the key's name.
/// `None` inside a flow collection (`{...}`, `[...]`), where blanking would
/// break the syntax.
fn extent(text: &str, doc: &RawDoc, at: Pos) -> Option<(std::ops::Range<usize>, String)> {
    // The key or item written at `at`, else the key before it on its line.
    let path = doc
        .fields
        .iter()
        .filter(|(_, p)| **p == at)
        .map(|(k, _)| k)
        .max_by_key(|k| k.len())
        .or_else(|| {
            doc.fields
                .iter()
                .filter(|(_, p)| p.0 == at.0 && p.1 < at.1)
                .max_by_key(|(k, p)| (p.1, k.len()))
                .map(|(k, _)| k)
        })?;
    let pos = doc.fields[path];
    let mut start = offset_of(text, pos)?;
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..start];
    let (open, close) = before.chars().fold((0, 0), |(o, c), ch| match ch {
        '{' | '[' => (o + 1, c),
        '}' | ']' => (o, c + 1),
        _ => (o, c),
    });
    if open > close {
        return None;
    }
    let indent = start - line_start;
    let item = path.ends_with(']');
    if item {
        // A block sequence item: from its dash.
        let dash = before.trim_end();
        if !dash.ends_with('-') {
            return None;
        }
        start = line_start + dash.len() - 1;
    }
    let name = match path.rfind(['.', '[']) {
        Some(i) if !item => path[i + 1..].to_string(),
        None if !item => path.clone(),
        _ => String::new(),
    };
    // Its first line, then every line indented deeper (or a `- ` item at
    // the key's own indentation: `key:` then `- a`), up to the document's end.
    let mut end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let limit = doc.end.min(text.len());
    while end < limit {
        let next = end + 1;
        let line = text[next..].split('\n').next().unwrap_or_default();
        let spaces = line.len() - line.trim_start_matches(' ').len();
        let rest = line.trim_start_matches(' ');
        let deeper = spaces > indent
            || (!item && spaces == indent && (rest == "-" || rest.starts_with("- ")));
        if !(rest.is_empty() || deeper) || next + line.len() > limit {
            break;
        }
        end = next + line.len();
    }
    Some((start..end, name))
}

/// Replaces the text in `range` with spaces, byte for byte (newlines kept).
fn blank(text: &mut String, range: std::ops::Range<usize>) {
    let blanked: String = text[range.clone()]
        .chars()
        .map(|c| {
            if c == '\n' {
                "\n".to_string()
            } else {
                " ".repeat(c.len_utf8())
            }
        })
        .collect();
    text.replace_range(range, &blanked);
}

/// serde-saphyr appends " at line L, column C" to its messages; certplane
/// prints the position itself, first.
fn strip_position(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default().trim();
    match first.rfind(" at line ") {
        Some(i) if first[i..].contains(", column ") => first[..i].to_string(),
        _ => first.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Doc {
        kind: String,
        #[serde(default)]
        flag: Option<bool>,
        #[serde(default)]
        list: Vec<String>,
    }

    #[test]
    fn splits_documents_and_skips_empty_ones() {
        let text = "# header\n---\nkind: A\nlist:\n  - x\n  - y\n---\n---\n# only a comment\n---\nkind: B\n";
        let docs = split(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].top("kind").unwrap(), ("A", (3, 7)));
        assert_eq!(docs[0].fields["kind"], (3, 1));
        assert_eq!(docs[0].fields["list"], (4, 1));
        assert_eq!(docs[0].fields["list[1]"], (6, 5));
        assert_eq!(docs[1].top("kind").unwrap(), ("B", (11, 7)));
        let b: Doc = deserialize(text, &docs[1]).unwrap();
        assert_eq!(b.kind, "B");
    }

    #[test]
    fn finds_where_literal_block_text_starts() {
        let text = "kind: A\nspec:\n  hcl: |  # the policy\n\n    path \"x\" {\n      capabilities = []\n    }\n  other: >\n    folded\n";
        let docs = split(text).unwrap();
        // Line 1 of the value is the blank line 4; its text is indented 4.
        assert_eq!(docs[0].blocks["spec.hcl"], (4, 5));
        assert!(!docs[0].blocks.contains_key("spec.other"));
        assert_eq!(docs[0].fields["spec.hcl"], (3, 3));
    }

    #[test]
    fn maps_nested_paths() {
        let text = "spec:\n  ca:\n    intermediate:\n      signedBy: {mount: pki}\n  rules:\n    - path: a/b\n      capabilities: [update]\n";
        let docs = split(text).unwrap();
        let f = &docs[0].fields;
        assert_eq!(f["spec.ca.intermediate.signedBy.mount"], (4, 18));
        assert_eq!(f["spec.rules[0]"], (6, 7));
        assert_eq!(f["spec.rules[0].path"], (6, 7));
        assert_eq!(f["spec.rules[0].capabilities[0]"], (7, 22));
    }

    #[test]
    fn errors_carry_file_positions() {
        let text = "kind: A\n---\n\nkind: B\nflag: NO\n";
        let docs = split(text).unwrap();
        let err = deserialize::<Doc>(text, &docs[1]).unwrap_err();
        assert_eq!(err.pos, (5, 7));
        assert!(err.message.contains("boolean"), "{}", err.message);
        assert!(!err.message.contains("at line"), "{}", err.message);

        let text = "kind: A\nkind: B\n";
        let docs = split(text).unwrap();
        let err = deserialize::<Doc>(text, &docs[0]).unwrap_err();
        assert_eq!(err.pos, (2, 1));
        assert!(err.message.contains("duplicate"), "{}", err.message);

        let err = split("kind: [A\n").unwrap_err();
        assert_eq!(err.pos.0, 1);
    }

    #[test]
    fn a_scalar_document_is_not_empty() {
        let docs = split("hello\n").unwrap();
        assert_eq!(docs.len(), 1);
        assert!(!docs[0].root_is_mapping);
    }

    #[test]
    fn every_error_of_a_document_with_its_line() {
        let text =
            "kind: A\n---\nkind: B\nflg: true\nlist:\n  - x\nother:\n  nested: 1\nflag: NO\n";
        let docs = split(text).unwrap();
        assert!(deserialize_all::<Doc>(text, &docs[0]).is_ok());
        let errs = deserialize_all::<Doc>(text, &docs[1]).unwrap_err();
        let got: Vec<usize> = errs.iter().map(|e| e.pos.0).collect();
        assert_eq!(got, vec![4, 7, 9], "{errs:?}");
        assert!(
            errs[0].message.starts_with("unknown field `flg`"),
            "{errs:?}"
        );
        assert!(
            errs[1].message.starts_with("unknown field `other`"),
            "{errs:?}"
        );
        assert!(errs[2].message.contains("boolean"), "{errs:?}");
        assert_eq!(errs[2].pos, (9, 7));
        // A required field blanked is not reported as missing; a syntax
        // error is one error.
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Strict {
            kind: String,
            flag: bool,
        }
        let text = "kind: A\nflag: maybe\nextra: 1\n";
        let docs = split(text).unwrap();
        let errs = deserialize_all::<Strict>(text, &docs[0]).unwrap_err();
        let got: Vec<Pos> = errs.iter().map(|e| e.pos).collect();
        assert_eq!(got, vec![(2, 7), (3, 1)], "{errs:?}");
        // Inside a flow collection nothing is blanked: the first error only.
        let text = "kind: A\nlist: [x, {y: 1}, z]\nbad: 1\n";
        let docs = split(text).unwrap();
        let errs = deserialize_all::<Doc>(text, &docs[0]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].pos.0, 2, "{errs:?}");
    }

    #[test]
    fn a_sequence_item_and_a_nested_key_are_blanked_whole() {
        let text =
            "kind: A\nlist:\n  - x\n  - {y: 1}\n  - z\nbad:\n  deep:\n    deeper: 1\nworse: 2\n";
        let docs = split(text).unwrap();
        let errs = deserialize_all::<Doc>(text, &docs[0]).unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|e| e.pos.0).collect();
        assert_eq!(lines, vec![4, 6, 9], "{errs:?}");
    }

    #[test]
    fn tab_errors_point_at_the_tab() {
        // A tab indenting the line after a plain scalar: the parser names
        // the scalar, a line (or, past a blank line, two) before.
        let head = "kind: A\nspec:\n  ttl: 1h\n";
        for (text, want) in [
            (format!("{head}\tmore: 1\n"), (4, 1)),
            (format!("{head}\n\tmore: 1\n"), (5, 1)),
            // A tab in block indentation: the parser names the column after it.
            ("kind: A\nmeta:\n\tname: p\n".to_string(), (3, 1)),
            (
                "kind: A\nspec:\n  ca:\n    root:\n  \t  cn: x\n".to_string(),
                (5, 3),
            ),
        ] {
            let err = split(&text).unwrap_err();
            assert!(err.message.contains("tab"), "{err:?}");
            assert_eq!(err.pos, want, "{text:?}: {err:?}");
        }
        // Other syntax errors keep the parser's position.
        let err = split("kind: A\nspec:\n  a: 1\n b: 2\n").unwrap_err();
        assert_eq!(err.pos.0, 4, "{err:?}");
    }

    /// The documents of `text` split piece by piece ([`cut`] every
    /// `piece` bytes), put together; `None` when a piece is not valid YAML.
    fn split_in_pieces(text: &str, piece: usize) -> Option<Vec<RawDoc>> {
        let starts = cut(text, piece);
        let ends = starts.iter().skip(1).map(|s| s.0).chain([text.len()]);
        let mut docs = Vec::new();
        for (start, end) in starts.iter().zip(ends) {
            docs.extend(split_piece(text, *start, end)?);
        }
        Some(docs)
    }

    /// Documents that end in each way a document can: a `---` line after a
    /// plain, block or flow scalar at the root, a comment, `...`, a marker
    /// followed by content or a tab, with markers-lookalikes inside.
    const STREAM: &str = "# head\nkind: A\nlist:\n  - x\n---\n--- |\n  root text\n  ---\n---\n\
        kind: B\nblock: |\n\n  line\n  --- not a marker (indented)\n---\n--- |\nroot text at column 0\n---\n\
        plain root\n  scalar\n---\t\nkind: C # comment\n...\n# between\n--- {kind: D, list: [a, b]}\n\
        ---\nkind: F\n----: 1\n---x: 2\n---\n\n# only a comment\n---\nkind: E\nmeta:\n  name: e\n  nested:\n    - a: 1\n      b: |\n        x\n";

    #[test]
    fn a_stream_split_in_pieces_is_the_stream_split_whole() {
        let whole = split(STREAM).unwrap();
        assert_eq!(whole.len(), 9, "{whole:#?}");
        let starts = cut(STREAM, 1);
        // Every `---` line is a cut (at least one byte apart), and nothing else:
        // not `----`, `---x: 1` or an indented `---`.
        let lines: Vec<usize> = starts.iter().map(|s| s.1 + 1).collect();
        assert_eq!(
            lines,
            [1, 5, 6, 9, 15, 16, 18, 21, 25, 26, 30, 33],
            "{starts:?}"
        );
        for (at, breaks) in &starts {
            assert_eq!(STREAM[..*at].matches('\n').count(), *breaks);
        }
        assert_eq!(split_in_pieces(STREAM, 1).unwrap(), whole);
        // In larger pieces, and with Windows line ends.
        assert_eq!(split_in_pieces(STREAM, 40).unwrap(), whole);
        assert!(cut(STREAM, 40).len() > 2);
        let crlf = STREAM.replace('\n', "\r\n");
        assert_eq!(cut(&crlf, 1).len(), starts.len());
        assert_eq!(split_in_pieces(&crlf, 1).unwrap(), split(&crlf).unwrap());
        // A document deep in the stream keeps its place in the file.
        let e = whole.last().unwrap();
        assert_eq!(e.top("kind").unwrap(), ("E", (34, 7)));
        assert_eq!(&STREAM[e.start..e.start + 3], "---");
    }

    #[test]
    fn a_stream_is_cut_only_where_the_pieces_stand_alone() {
        // Short: one piece.
        assert_eq!(cut(STREAM, STREAM.len() / 2 + 1), [(0, 0)]);
        // A directive belongs to the document after it.
        let directive = format!("{STREAM}---\n%YAML 1.2\n---\nkind: F\n");
        assert_eq!(cut(&directive, 1), [(0, 0)]);
        assert_eq!(cut(&format!("%YAML 1.2\n{STREAM}"), 1), [(0, 0)]);
        // A lone carriage return is a line break to the parser.
        assert_eq!(cut(&STREAM.replacen('\n', "\r", 1), 1), [(0, 0)]);
        assert_eq!(cut(&format!("{STREAM}---\n\u{feff}kind: G\n"), 1), [(0, 0)]);
        // A byte order mark at the start is not a cut stopper.
        assert!(cut(&format!("\u{feff}{STREAM}"), 1).len() > 2);
    }

    #[test]
    fn a_stream_that_is_not_yaml_is_not_yaml_in_some_piece() {
        for broken in [
            // A quoted scalar open across a marker.
            "kind: A\nq: \"open\n---\nclosed\"\n---\nkind: B\n",
            // A flow collection open across a marker.
            "kind: A\nlist: [a,\n---\nb]\n---\nkind: B\n",
            // A plain syntax error in a later piece.
            "kind: A\n---\nkind: B\n  bad: 1\n",
        ] {
            assert!(split(broken).is_err(), "{broken:?}");
            assert_eq!(split_in_pieces(broken, 1), None, "{broken:?}");
        }
    }
}
