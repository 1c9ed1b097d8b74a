//! Loading: a directory tree of YAML -> a typed [`Repository`].
//!
//! Files are read in sorted path order; names starting with `.` and paths
//! matched by the root's `.certplaneignore` (gitignore syntax) are skipped.
//! Every problem becomes a [`Diagnostic`] with file:line:column and a hint,
//! and all of them are collected (every document of every file) before
//! [`load`] returns. Relative paths inside documents are rebased against the
//! directory of the file that names them, and must stay inside the
//! repository ([`confine`]); `{env: ...}` sources may name only variables
//! the operator allows ([`EnvRules`]).

pub mod confine;
mod walk;
pub mod yaml;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::addr::VaultAddr;
use crate::diagnostic::{Diagnostic, Diagnostics, suggest};
use crate::model::config::VaultAuth;
use crate::model::{
    API_VERSION, ConfigSpec, Document, FileRef, Loaded, Location, Meta, Origin, Positions,
    Repository, Source, SpecReader, VAULT_KINDS, VaultIssuerSpec, VaultObject, VaultSpec,
};
use crate::operator::{EnvRefusal, EnvRules};

use yaml::{Pos, RawDoc, YamlError};

/// File names that may hold the `Config`, at the root only.
const CONFIG_FILES: &[&str] = &["certplane.yaml", "certplane.yml"];

use confine::Root;

/// What a load needs to know besides the directory.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// What `{env: ...}` sources may read (the operator's `--allow-env`).
    pub env: EnvRules,
    /// Directories that are never repository input: the render directory of
    /// `--render` (the `Config`'s `spec.cluster.render` is always excluded).
    pub exclude: Vec<PathBuf>,
    /// The repository identity when the `Config` names none (`run` derives
    /// it from the Git URL); default: the directory's name.
    pub identity: Option<String>,
}

/// Loads every certplane document under `dir` (or the single file `dir`),
/// with the default rules for `{env: ...}` sources.
///
/// Returns every problem found, in file order, when there is at least one.
pub fn load(dir: &Path) -> Result<Repository, Diagnostics> {
    load_with(dir, &LoadOptions::default())
}

/// [`load`], where `{env: ...}` sources may read what `options.env` allows,
/// with render directories excluded and a default identity.
///
/// The render directory (from `options.exclude` or the `Config`'s
/// `spec.cluster.render`) is never walked, and a file that starts with the
/// header certplane writes on rendered manifests is skipped wherever it is:
/// rendered output is never read back as input.
pub fn load_with(dir: &Path, options: &LoadOptions) -> Result<Repository, Diagnostics> {
    let mut excluded: Vec<PathBuf> = options
        .exclude
        .iter()
        .cloned()
        .chain(configured_render_dir(dir))
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    excluded.sort();
    excluded.dedup();
    let walk = match walk::files(dir, &excluded) {
        Ok(found) => found,
        Err(d) => return Err(Diagnostics(vec![d])),
    };
    let mut diags = walk.problems;
    let mut repo = Repository {
        root: walk.root.clone(),
        ..Repository::default()
    };
    let parts = load_files(&walk.files, &walk.confine, &options.env);
    // Each list at its final size at once (no doubling as the parts come).
    let total = |n: fn(&Part) -> usize| parts.iter().map(n).sum::<usize>();
    repo.files.reserve_exact(total(|p| p.repo.files.len()));
    repo.vault.reserve_exact(total(|p| p.repo.vault.len()));
    repo.vault_issuers
        .reserve_exact(total(|p| p.repo.vault_issuers.len()));
    repo.manifests
        .reserve_exact(total(|p| p.repo.manifests.len()));
    for part in parts {
        repo.files.extend(part.repo.files);
        if let Some(config) = part.repo.config {
            match &repo.config {
                // The first Config is the root's certplane.yaml, a second
                // one its certplane.yml (loaded by another job).
                Some(first) => diags.push(second_config(&config.origin, &first.origin)),
                None => repo.config = Some(config),
            }
        }
        repo.vault.extend(part.repo.vault);
        repo.vault_issuers.extend(part.repo.vault_issuers);
        repo.manifests.extend(part.repo.manifests);
        diags.extend(part.diags);
    }
    repo.identity = match repo.config.as_ref().map(|c| c.meta.name.as_str()) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => options
            .identity
            .clone()
            .unwrap_or_else(|| crate::model::identity::from_dir(&repo.root)),
    };
    check_duplicates(&repo, &mut diags);
    if diags.is_empty() {
        Ok(repo)
    } else {
        Err(Diagnostics(diags))
    }
}

/// Notes a file as read (path and digest) and hands its bytes on.
fn record(repo: &mut Repository, rel: &Path, bytes: Vec<u8>) -> Vec<u8> {
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    repo.files.push(crate::model::InputFile {
        path: rel.to_path_buf(),
        sha256: digest.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
    });
    bytes
}

fn loc(file: &Path, (line, column): Pos) -> Location {
    Location {
        file: file.into(),
        line,
        column,
    }
}

/// What a document may refer to outside itself.
struct Refs<'a> {
    /// Files: inside this root.
    root: &'a Root,
    /// Environment variables: what these rules allow.
    env: &'a EnvRules,
    /// The field paths of the documents loaded so far, by shape: documents
    /// written alike share them ([`crate::model::Positions::shared`]).
    shapes: RefCell<HashSet<Arc<crate::model::Shape>>>,
}

/// The most threads a load uses (the calling thread included).
const LOAD_THREADS: usize = 4;

/// Documents per job: the documents of a file with more are loaded in
/// parts of this many, in parallel.
const DOCS_PER_JOB: usize = 128;

/// Bytes per piece: a file of two pieces or more is split (its fields
/// mapped, [`yaml::split`]) in pieces of about this many bytes, cut at its
/// `---` lines ([`yaml::cut`]), in parallel.
const PIECE_BYTES: usize = 32 * 1024;

/// What one job loaded: its part of the repository (in file order) and
/// its problems.
#[derive(Default)]
struct Part {
    repo: Repository,
    diags: Vec<Diagnostic>,
}

/// A file read and split, shared by the jobs that load its documents.
struct SplitFile<'a> {
    rel: &'a Path,
    file: &'a Path,
    text: Arc<String>,
    docs: Vec<RawDoc>,
}

/// Documents of a split file left to load: (file index, file, range).
type DocsJob<'a> = (usize, Arc<SplitFile<'a>>, std::ops::Range<usize>);

/// A long file read, being split piece by piece.
struct Pieces<'a> {
    index: usize,
    rel: &'a Path,
    file: &'a Path,
    text: Arc<String>,
    starts: Vec<yaml::PieceStart>,
    /// The documents of each piece split so far, and how many pieces are
    /// left.
    split: std::sync::Mutex<(Vec<Option<PieceDocs>>, usize)>,
}

/// The documents of a piece; `None` when the piece is not valid YAML.
type PieceDocs = Option<Vec<RawDoc>>;

/// A piece of a long file left to split: (file, piece).
type PieceJob<'a> = (Arc<Pieces<'a>>, usize);

/// The jobs of a load and what they loaded.
struct Jobs<'a> {
    files: &'a [(PathBuf, PathBuf)],
    queue: std::sync::Mutex<Queue<'a>>,
    /// Signalled when parts are queued or a file is split.
    changed: std::sync::Condvar,
    /// What each job loaded, by (file, 0) for a file as read (or not),
    /// and (file, 1 + first document) for its documents or its syntax
    /// error.
    done: std::sync::Mutex<Vec<((usize, usize), Part)>>,
}

/// What is left to do.
#[derive(Default)]
struct Queue<'a> {
    /// The next file to read.
    next_file: usize,
    /// Files being read and split, and pieces of files queued or being
    /// split: they may still queue parts.
    splitting: usize,
    /// Pieces of long files to split.
    pieces: Vec<PieceJob<'a>>,
    /// Parts of files already split.
    parts: Vec<DocsJob<'a>>,
}

/// Locks `m`; a poisoned lock (a job panicked) is still usable: the panic
/// itself reaches the caller when the threads are joined.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Loads `files` on up to [`LOAD_THREADS`] threads (YAML parsing is most
/// of a load: 1,000 documents take a tenth of a second on one core), a job
/// per file and per [`DOCS_PER_JOB`] documents of a long file. Returns the
/// parts in file and document order: the repository and its problems are
/// exactly those of loading the files one after the other.
fn load_files(files: &[(PathBuf, PathBuf)], root: &Root, env: &EnvRules) -> Vec<Part> {
    let jobs = Jobs {
        files,
        queue: Default::default(),
        changed: Default::default(),
        done: Default::default(),
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, LOAD_THREADS);
    let work = || {
        // The field paths of documents written alike are shared within a
        // thread ([`crate::model::Positions::shared`]).
        let refs = Refs {
            root,
            env,
            shapes: RefCell::new(HashSet::new()),
        };
        work_on(&jobs, &refs);
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    let mut done = jobs.done.into_inner().unwrap_or_else(|p| p.into_inner());
    done.sort_unstable_by_key(|(at, _)| *at);
    done.into_iter().map(|(_, part)| part).collect()
}

/// What a thread does next.
enum Next<'a> {
    Piece(PieceJob<'a>),
    Docs(DocsJob<'a>),
    File(usize),
}

/// Takes jobs until there are none left and nothing is being split:
/// pieces of long files first (they make the parts), then parts of files
/// already split (their text is freed sooner), then the next file.
fn work_on<'a>(jobs: &Jobs<'a>, refs: &Refs<'_>) {
    loop {
        let next = {
            let mut queue = lock(&jobs.queue);
            loop {
                if let Some(piece) = queue.pieces.pop() {
                    break Next::Piece(piece);
                }
                if let Some(part) = queue.parts.pop() {
                    break Next::Docs(part);
                }
                if queue.next_file < jobs.files.len() {
                    queue.next_file += 1;
                    queue.splitting += 1;
                    break Next::File(queue.next_file - 1);
                }
                if queue.splitting == 0 {
                    return;
                }
                queue = jobs
                    .changed
                    .wait(queue)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        match next {
            Next::Piece((pieces, at)) => split_piece(jobs, refs, &pieces, at),
            Next::Docs((index, split, range)) => {
                let mut part = Part::default();
                load_docs(&mut part, refs, &split, range.clone());
                lock(&jobs.done).push(((index, 1 + range.start), part));
            }
            Next::File(index) => {
                let (rel, file) = &jobs.files[index];
                let splitting = Splitting(jobs);
                let mut part = Part::default();
                let Some(text) = read_file(&mut part, rel, file) else {
                    drop(splitting);
                    lock(&jobs.done).push(((index, 0), part));
                    continue;
                };
                // The root's Config file stays whole: a second Config in it
                // is found by the first.
                let starts = if is_config_file(rel) {
                    Vec::new()
                } else {
                    yaml::cut(&text, PIECE_BYTES)
                };
                let text = Arc::new(text);
                if starts.len() > 1 {
                    let count = starts.len();
                    let pieces = Arc::new(Pieces {
                        index,
                        rel,
                        file,
                        text,
                        starts,
                        split: std::sync::Mutex::new((vec![None; count], count)),
                    });
                    let mut queue = lock(&jobs.queue);
                    queue.splitting += count;
                    // Taken from the end: the first piece first.
                    queue
                        .pieces
                        .extend((0..count).rev().map(|at| (Arc::clone(&pieces), at)));
                    drop(queue);
                    jobs.changed.notify_all();
                    drop(splitting);
                    lock(&jobs.done).push(((index, 0), part));
                } else {
                    let docs = yaml::split(&text);
                    let split = (index, rel.as_path(), file.as_path(), text, docs);
                    split_done(jobs, refs, part, split, splitting);
                }
            }
        }
    }
}

/// Splits piece `at` of a long file; the thread that splits its last piece
/// puts the file's documents together ([`split_done`]). A piece that is not
/// valid YAML has the whole file split again, for the exact error of a
/// file split whole.
fn split_piece<'a>(jobs: &Jobs<'a>, refs: &Refs<'_>, pieces: &Pieces<'a>, at: usize) {
    // This piece's share of the queue's `splitting`, released when done.
    let splitting = Splitting(jobs);
    let end = pieces.starts.get(at + 1).map_or(pieces.text.len(), |s| s.0);
    let docs = yaml::split_piece(&pieces.text, pieces.starts[at], end);
    let all = {
        let mut split = lock(&pieces.split);
        split.0[at] = Some(docs);
        split.1 -= 1;
        (split.1 == 0).then(|| std::mem::take(&mut split.0))
    };
    let Some(all) = all else { return };
    let docs = all
        .into_iter()
        .map(Option::flatten)
        .collect::<Option<Vec<_>>>()
        .map(|pieces| {
            // Moved, not copied (`concat` would clone every document).
            let mut docs = Vec::with_capacity(pieces.iter().map(Vec::len).sum());
            pieces.into_iter().for_each(|p| docs.extend(p));
            docs
        });
    let docs = match docs {
        Some(docs) => Ok(docs),
        None => yaml::split(&pieces.text),
    };
    let text = Arc::clone(&pieces.text);
    let split = (pieces.index, pieces.rel, pieces.file, text, docs);
    split_done(jobs, refs, Part::default(), split, splitting);
}

/// A file split: (file index, file relative to the root, file, text, its
/// documents or its syntax error).
type Split<'a> = (
    usize,
    &'a Path,
    &'a Path,
    Arc<String>,
    Result<Vec<RawDoc>, YamlError>,
);

/// Queues the documents of a split file in parts of [`DOCS_PER_JOB`] (the
/// root's Config file in one), tells the others the file is split, loads
/// the first part into `part` and hands it in; or hands in the file's
/// syntax error.
fn split_done<'a>(
    jobs: &Jobs<'a>,
    refs: &Refs<'_>,
    mut part: Part,
    (index, rel, file, text, docs): Split<'a>,
    splitting: Splitting<'_, 'a>,
) {
    let docs = match docs {
        Ok(docs) => docs,
        Err(e) => {
            drop(splitting);
            part.diags.push(syntax_error(file, &e));
            lock(&jobs.done).push(((index, 1), part));
            return;
        }
    };
    let split = Arc::new(SplitFile {
        rel,
        file,
        text,
        docs,
    });
    let count = split.docs.len();
    let per_job = if is_config_file(rel) {
        count.max(1)
    } else {
        DOCS_PER_JOB
    };
    let mut queue = lock(&jobs.queue);
    for start in (per_job..count).step_by(per_job) {
        let range = start..count.min(start + per_job);
        queue.parts.push((index, Arc::clone(&split), range));
    }
    drop(queue);
    drop(splitting);
    load_docs(&mut part, refs, &split, 0..count.min(per_job));
    lock(&jobs.done).push(((index, 1), part));
}

/// A file being read and split: when done (or if reading it panicked,
/// so that no other thread waits for it forever), the others are told.
struct Splitting<'j, 'a>(&'j Jobs<'a>);

impl Drop for Splitting<'_, '_> {
    fn drop(&mut self) {
        lock(&self.0.queue).splitting -= 1;
        self.0.changed.notify_all();
    }
}

/// Whether `rel` is where the `Config` may be: `certplane.yaml` (or
/// `.yml`) at the root.
fn is_config_file(rel: &Path) -> bool {
    rel.parent().is_none_or(|p| p.as_os_str().is_empty())
        && rel
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| CONFIG_FILES.contains(&n))
}

/// Reads one file (recorded in `part` as read); `None`, with the problem
/// in `part`, when it cannot be read, and for a manifest certplane
/// rendered.
fn read_file(part: &mut Part, rel: &Path, file: &Path) -> Option<String> {
    let text = match std::fs::read(file) {
        Ok(bytes) => match String::from_utf8(record(&mut part.repo, rel, bytes)) {
            Ok(t) => t,
            Err(e) => {
                part.diags.push(
                    Diagnostic::new(
                        loc(file, (1, 1)),
                        format!("file is not valid UTF-8 ({})", e.utf8_error()),
                    )
                    .hint("save the file as UTF-8"),
                );
                return None;
            }
        },
        Err(e) => {
            part.diags.push(
                Diagnostic::new(loc(file, (1, 1)), format!("cannot read file: {e}"))
                    .hint("check the file's permissions"),
            );
            return None;
        }
    };
    if text.starts_with(crate::cluster::render::RENDERED_MARK) {
        tracing::warn!(
            file = %file.display(),
            "skipping a manifest rendered by certplane: rendered output is not repository input"
        );
        return None;
    }
    Some(text)
}

/// Loads the documents `range` of a split file into `part`.
fn load_docs(
    part: &mut Part,
    refs: &Refs<'_>,
    split: &SplitFile<'_>,
    range: std::ops::Range<usize>,
) {
    let file = split.file;
    let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
    let shared: Arc<Path> = Arc::from(file);
    for doc in &split.docs[range] {
        let cx = DocCx {
            file,
            shared: &shared,
            dir: &dir,
            text: &split.text,
            doc,
            refs,
            refused: RefCell::new(Vec::new()),
        };
        if let Err(d) = cx.load_doc(&mut part.repo, split.rel) {
            part.diags.push(*d);
        }
        part.diags.extend(cx.refused.into_inner());
    }
}

/// "a second Config", at `second`.
fn second_config(second: &Origin, first: &Origin) -> Diagnostic {
    Diagnostic::new(second.doc(), "a second Config")
        .hint(format!("keep one Config; the first is at {}", first.doc()))
}

fn syntax_error(file: &Path, e: &YamlError) -> Diagnostic {
    let hint = if e.message.contains("tab") {
        "indent with spaces: YAML does not allow tabs for indentation"
    } else {
        "fix the YAML syntax (unclosed quotes or brackets, or a key not followed by `:`, are common causes)"
    };
    Diagnostic::new(loc(file, e.pos), format!("invalid YAML: {}", e.message)).hint(hint)
}

/// One document being loaded.
struct DocCx<'a> {
    file: &'a Path,
    /// The same, shared by every origin in the file.
    shared: &'a Arc<Path>,
    dir: &'a Path,
    text: &'a str,
    doc: &'a RawDoc,
    refs: &'a Refs<'a>,
    /// Problems of this document besides the one its load returns: every
    /// further YAML error, and sources and paths refused.
    refused: RefCell<Vec<Diagnostic>>,
}

type DocResult<T> = Result<T, Box<Diagnostic>>;

/// Reads the spec of a Vault kind from the document in hand.
struct SpecOf<'a, 'b>(&'a DocCx<'b>);

impl SpecReader for SpecOf<'_, '_> {
    type Error = Box<Diagnostic>;

    fn read<S: VaultSpec>(&mut self) -> DocResult<(crate::model::Meta, S)> {
        self.0.spec::<S>(S::KIND)
    }
}

impl DocCx<'_> {
    fn at(&self, pos: Pos) -> Location {
        loc(self.file, pos)
    }

    fn err(
        &self,
        pos: Pos,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Box<Diagnostic> {
        Box::new(Diagnostic::new(self.at(pos), message).hint(hint))
    }

    fn origin(&self) -> Origin {
        let mut shapes = self.refs.shapes.borrow_mut();
        let mut positions = |p: &BTreeMap<String, Pos>| -> Positions {
            let collected: Positions = p.iter().collect();
            collected.shared(&mut shapes)
        };
        Origin {
            file: Arc::clone(self.shared),
            line: self.doc.root_pos.0,
            column: self.doc.root_pos.1,
            fields: positions(&self.doc.fields),
            blocks: positions(&self.doc.blocks),
        }
    }

    fn load_doc(&self, repo: &mut Repository, rel: &Path) -> DocResult<()> {
        let doc = self.doc;
        if !doc.root_is_mapping {
            return Err(self.err(
                doc.root_pos,
                "document is not a mapping",
                "every document is an object with apiVersion, kind, metadata and spec",
            ));
        }
        let Some((api_version, api_pos)) = doc.top("apiVersion") else {
            let pos = doc
                .fields
                .get("apiVersion")
                .copied()
                .unwrap_or(doc.root_pos);
            return Err(self.err(
                pos,
                "document has no apiVersion",
                format!("start the document with `apiVersion: {API_VERSION}` and a `kind:`"),
            ));
        };
        let kind = doc.top("kind");
        if api_version != API_VERSION {
            if api_version.starts_with("certplane.dev/") {
                return Err(self.err(
                    api_pos,
                    format!("unknown certplane apiVersion {api_version}"),
                    format!("use `apiVersion: {API_VERSION}`"),
                ));
            }
            if kind.is_none() {
                return Err(self.err(
                    doc.root_pos,
                    "document has no kind",
                    "every document needs a `kind:` next to its apiVersion",
                ));
            }
            // A cluster object (cert-manager Issuer, Secret...): kept as
            // written, typed and checked by `validate`.
            return self.load_manifest(repo);
        }
        let Some((kind, kind_pos)) = kind else {
            return Err(self.err(
                doc.root_pos,
                "document has no kind",
                format!(
                    "add `kind:`, one of {}, VaultIssuer or Config",
                    VAULT_KINDS.join(", ")
                ),
            ));
        };
        if kind == "Config" {
            return self.load_config(repo, rel, kind_pos);
        }
        if kind == "VaultIssuer" {
            let (meta, mut spec) = self.spec::<VaultIssuerSpec>(kind)?;
            if let Some(src) = spec.ca_bundle_from.as_mut() {
                self.source(src, "spec.caBundleFrom");
            }
            repo.vault_issuers.push(Loaded {
                meta,
                origin: self.origin(),
                spec,
            });
            return Ok(());
        }
        let mut reader = SpecOf(self);
        let Some(object) = VaultObject::read(kind, &mut reader) else {
            let mut known: Vec<&str> = VAULT_KINDS.to_vec();
            known.push("VaultIssuer");
            known.push("Config");
            let hint = match suggest::closest(kind, known.iter().copied()) {
                Some(c) => format!("did you mean {c}? known kinds: {}", known.join(", ")),
                None => format!("known kinds: {}", known.join(", ")),
            };
            return Err(self.err(kind_pos, format!("unknown kind {kind}"), hint));
        };
        let (meta, mut spec) = object?;
        spec.refs_mut(&mut |r, at| match r {
            FileRef::Path(p) => self.path(p, at),
            FileRef::Source(s) => self.source(s, at),
        });
        repo.vault.push(Loaded {
            meta,
            origin: self.origin(),
            spec,
        });
        Ok(())
    }

    /// Keeps a cluster object as written (a JSON value), with its metadata.
    fn load_manifest(&self, repo: &mut Repository) -> DocResult<()> {
        // Built while the file was split when it is written plainly (as
        // serde-saphyr would read it); else read now, with its errors.
        let value = match self.doc.value.take() {
            Some(v) => v,
            None => self.typed::<serde_json::Value>("this manifest")?,
        };
        let meta = self.manifest_meta(&value)?;
        repo.manifests.push(Loaded {
            meta,
            origin: self.origin(),
            spec: value,
        });
        Ok(())
    }

    /// `metadata` of a cluster object: name (required), namespace, labels
    /// and annotations; other metadata fields are the API server's business.
    fn manifest_meta(&self, value: &serde_json::Value) -> DocResult<Meta> {
        let kind = value["kind"].as_str().unwrap_or("object");
        let pos_of = |path: &str| {
            self.doc
                .fields
                .get(path)
                .copied()
                .unwrap_or(self.doc.root_pos)
        };
        let metadata = match value.get("metadata") {
            Some(serde_json::Value::Object(m)) => m,
            Some(_) => {
                return Err(self.err(
                    pos_of("metadata"),
                    format!("{kind}: metadata is not a mapping"),
                    "write `metadata: {name: ..., namespace: ...}`",
                ));
            }
            None => {
                return Err(self.err(
                    self.doc.root_pos,
                    format!("{kind} has no metadata.name"),
                    "every Kubernetes object needs `metadata: {name: ...}`",
                ));
            }
        };
        let name = match metadata.get("name") {
            Some(serde_json::Value::String(n)) if !n.trim().is_empty() => n.clone(),
            Some(serde_json::Value::String(_)) | None => {
                let pos = self
                    .doc
                    .fields
                    .get("metadata.name")
                    .or_else(|| self.doc.fields.get("metadata"))
                    .copied()
                    .unwrap_or(self.doc.root_pos);
                return Err(self.err(
                    pos,
                    format!("{kind} has no metadata.name"),
                    "every Kubernetes object needs `metadata: {name: ...}` (generateName cannot be applied declaratively)",
                ));
            }
            Some(_) => {
                return Err(self.err(
                    pos_of("metadata.name"),
                    format!("{kind}: metadata.name is not a string"),
                    "quote the name if it looks like a number or boolean",
                ));
            }
        };
        let namespace = match metadata.get("namespace") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(n)) => Some(n.clone()),
            Some(_) => {
                return Err(self.err(
                    pos_of("metadata.namespace"),
                    format!("{kind}: metadata.namespace is not a string"),
                    "quote the namespace if it looks like a number or boolean",
                ));
            }
        };
        let mut meta = Meta {
            name,
            namespace,
            ..Meta::default()
        };
        for (field, out) in [
            ("labels", &mut meta.labels),
            ("annotations", &mut meta.annotations),
        ] {
            match metadata.get(field) {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::Object(m)) => {
                    for (k, v) in m {
                        let Some(v) = v.as_str() else {
                            return Err(self.err(
                                pos_of(&format!("metadata.{field}.{k}")),
                                format!("{kind}: metadata.{field}.{k} is not a string"),
                                "label and annotation values are strings: quote numbers and booleans",
                            ));
                        };
                        out.insert(k.clone(), v.to_string());
                    }
                }
                Some(_) => {
                    return Err(self.err(
                        pos_of(&format!("metadata.{field}")),
                        format!("{kind}: metadata.{field} is not a mapping"),
                        "write it as `key: value` pairs",
                    ));
                }
            }
        }
        Ok(meta)
    }

    /// Deserializes the document as `Document<S>` and checks its name.
    fn spec<S: DeserializeOwned>(&self, kind: &str) -> DocResult<(crate::model::Meta, S)>
    where
        Document<S>: DeserializeOwned,
    {
        let d: Document<S> = self.typed(kind)?;
        if d.metadata.name.trim().is_empty() {
            let pos = self
                .doc
                .fields
                .get("metadata")
                .copied()
                .unwrap_or(self.doc.root_pos);
            return Err(self.err(
                pos,
                format!("{kind} has no metadata.name"),
                "add `metadata: {name: ...}`; for a mount it is the mount path",
            ));
        }
        Ok((d.metadata, d.spec))
    }

    /// Deserializes the document; on errors, the first is returned and the
    /// others (every one [`yaml::deserialize_all`] finds) are added to
    /// this document's diagnostics.
    fn typed<T: DeserializeOwned>(&self, kind: &str) -> DocResult<T> {
        yaml::deserialize_all::<T>(self.text, self.doc).map_err(|errors| {
            let mut explained = errors.iter().map(|e| self.explain(kind, e));
            let first = explained.next();
            self.refused.borrow_mut().extend(explained);
            match first {
                Some(d) => Box::new(d),
                None => self.err(
                    self.doc.root_pos,
                    "invalid document",
                    "check it against schemas/",
                ),
            }
        })
    }

    fn load_config(&self, repo: &mut Repository, rel: &Path, kind_pos: Pos) -> DocResult<()> {
        if !is_config_file(rel) {
            return Err(self.err(
                kind_pos,
                format!("kind Config is only allowed in certplane.yaml at the repository root, not in {}", rel.display()),
                "move this document to certplane.yaml at the root of the repository",
            ));
        }
        let d: Document<ConfigSpec> = self.typed("Config")?;
        if !d.metadata.name.is_empty()
            && let Some(why) = crate::model::identity::label_problem(&d.metadata.name)
        {
            let pos = self
                .doc
                .fields
                .get("metadata.name")
                .copied()
                .unwrap_or(self.doc.root_pos);
            return Err(self.err(
                pos,
                format!(
                    "the repository name {:?} (Config metadata.name) is not a DNS-1123 label: {why}",
                    d.metadata.name
                ),
                "use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (e.g. pki-homelab)",
            ));
        }
        if let Some(first) = &repo.config {
            return Err(Box::new(second_config(&self.origin(), &first.origin)));
        }
        let mut spec = d.spec;
        self.config_refs(&mut spec);
        repo.config = Some(Loaded {
            meta: d.metadata,
            origin: self.origin(),
            spec,
        });
        Ok(())
    }

    fn refuse(&self, path: &str, message: String, hint: String) {
        let origin = self.origin();
        self.refused
            .borrow_mut()
            .push(Diagnostic::new(origin.at(path), message).hint(hint));
    }

    /// Rebases a path field against this file's directory, refusing one
    /// that leaves the repository.
    fn path(&self, p: &mut PathBuf, at: &str) {
        match self.refs.root.check(p, self.dir) {
            Ok(rebased) => *p = rebased,
            Err(e) => self.refuse(
                at,
                format!("{} is outside the repository: {}", p.display(), e.why()),
                format!(
                    "certplane reads files only inside the repository ({}): move the file into it and name it relative to this file, or pass its content in an environment variable the operator allows (--allow-env) with {{env: NAME}}",
                    self.refs.root.path().display()
                ),
            ),
        }
    }

    /// Checks a source: a file inside the repository (rebased), or a
    /// variable the operator allows.
    fn source(&self, src: &mut Source, at: &str) {
        match src {
            Source::Value(_) => {}
            Source::File(p) => self.path(p, &format!("{at}.file")),
            Source::Env(name) => match self.refs.env.check(name) {
                Ok(()) => {}
                Err(EnvRefusal::Credential(why)) => self.refuse(
                    &format!("{at}.env"),
                    format!("env source {name} may not be read: {why}"),
                    "certplane never hands its own credentials to a repository: put the value in a variable of its own (e.g. CERTPLANE_VAR_...) and name that".to_string(),
                ),
                Err(EnvRefusal::NotAllowed) => self.refuse(
                    &format!("{at}.env"),
                    format!(
                        "env source {name} is not allowed (allowed: {})",
                        self.refs.env.allowed()
                    ),
                    format!(
                        "name a variable starting with CERTPLANE_VAR_, or run certplane with --allow-env {name}"
                    ),
                ),
            },
        }
    }

    fn config_refs(&self, spec: &mut ConfigSpec) {
        if let Some(render) = spec.cluster.as_ref().and_then(|c| c.render.as_ref()) {
            // Kept as written (joined to the root when used), but confined:
            // a repository may not make certplane write elsewhere.
            let mut checked = render.clone();
            self.path(&mut checked, "spec.cluster.render");
        }
        let Some(v) = spec.vault.as_mut() else {
            return;
        };
        for (p, at) in [
            (&mut v.ca_bundle_file, "spec.vault.caBundleFile"),
            (&mut v.client_cert_file, "spec.vault.clientCertFile"),
            (&mut v.client_key_file, "spec.vault.clientKeyFile"),
        ] {
            if let Some(p) = p {
                self.path(p, at);
            }
        }
        let at = "spec.vault.auth";
        match v.auth.as_mut() {
            Some(VaultAuth::Token(t)) => {
                if let Some(s) = t.token_from.as_mut() {
                    self.source(s, &format!("{at}.token.tokenFrom"));
                }
            }
            Some(VaultAuth::Kubernetes(k)) => {
                if let Some(s) = k.token_from.as_mut() {
                    self.source(s, &format!("{at}.kubernetes.tokenFrom"));
                }
            }
            Some(VaultAuth::AppRole(a)) => {
                self.source(&mut a.secret_id_from, &format!("{at}.appRole.secretIdFrom"));
            }
            Some(VaultAuth::Jwt(j)) => {
                self.source(&mut j.token_from, &format!("{at}.jwt.tokenFrom"))
            }
            None => {}
        }
    }

    /// Turns a serde-saphyr error into a diagnostic a user can act on.
    fn explain(&self, kind: &str, e: &YamlError) -> Diagnostic {
        let path = self.path_at(e.pos);
        let within = match path.as_deref() {
            Some(p) if !p.is_empty() => match p.rfind(['.', '[']) {
                Some(i) => format!(" in {}", &p[..i]),
                None => String::new(),
            },
            _ => String::new(),
        };
        let m = e.message.as_str();
        let (message, hint) = if let Some(rest) = m.strip_prefix("unknown field ") {
            let (name, expected) = split_expected(rest);
            let hint = match expected {
                Some(list) => {
                    let names: Vec<&str> = list.split(", ").map(|s| s.trim_matches('`')).collect();
                    match suggest::closest(name, names.iter().copied()) {
                        Some(c) => format!(
                            "did you mean {c}? {kind} accepts here: {}",
                            names.join(", ")
                        ),
                        None => format!("remove it; {kind} accepts here: {}", names.join(", ")),
                    }
                }
                None => "remove it".to_string(),
            };
            (format!("unknown field {name}{within}"), hint)
        } else if let Some(rest) = m.strip_prefix("unknown variant ") {
            let (name, expected) = split_expected(rest);
            let hint = match expected {
                Some(list) => {
                    let names: Vec<&str> = list.split(", ").map(|s| s.trim_matches('`')).collect();
                    match suggest::closest(name, names.iter().copied()) {
                        Some(c) => format!("did you mean {c}? allowed: {}", names.join(", ")),
                        None => format!("allowed: {}", names.join(", ")),
                    }
                }
                None => "check the allowed values in the schema".to_string(),
            };
            (
                format!("unknown value {name}{}", within_or_field(&path)),
                hint,
            )
        } else if m.starts_with("invalid boolean") {
            (
                format!("{}: not a boolean", field_name(&path)),
                "write true or false; yes/no/on/off are strings in YAML 1.2".to_string(),
            )
        } else if let Some(rest) = m.strip_prefix("duplicate mapping key") {
            let key = rest
                .trim_start_matches(':')
                .split(',')
                .next()
                .unwrap_or_default()
                .trim();
            (
                format!("duplicate key {key}{within}"),
                "a key may appear only once in a mapping; remove one of them".to_string(),
            )
        } else if let Some(rest) = m.strip_prefix("missing field ") {
            let name = rest.trim_matches('`');
            // The error points at a key of the incomplete mapping, or at a
            // flow mapping `{}` written after its own key.
            let container = match (&path, self.doc.fields.values().any(|p| *p == e.pos)) {
                (Some(p), true) => parent_of_key(p),
                (Some(p), false) => p.clone(),
                (None, _) => String::new(),
            };
            let full = if container.is_empty() {
                name.to_string()
            } else {
                format!("{container}.{name}")
            };
            if full == "metadata.name" {
                (
                    format!("{kind} has no metadata.name"),
                    "add `metadata: {name: ...}`; for a mount it is the mount path".to_string(),
                )
            } else {
                (
                    format!("missing field {full}"),
                    format!("add `{name}:`; see schemas/ for the fields of {kind}"),
                )
            }
        } else if m.starts_with("invalid duration") {
            match m.split_once("; ") {
                Some((msg, hint)) => (format!("{}: {msg}", field_name(&path)), hint.to_string()),
                None => (
                    m.to_string(),
                    "write a Go-style duration such as 72h".to_string(),
                ),
            }
        } else if m.contains("enum variant value") || m.contains("externally tagged enum") {
            let parent = path.as_deref().map(parent_of).unwrap_or_default();
            (
                format!("{parent}: exactly one of its keys must be set"),
                "choose one: e.g. ca is root | import | intermediate, signedBy is mount | external | manual, a source is value | env | file".to_string(),
            )
        } else if m.contains("tab") {
            (
                format!("invalid YAML: {m}"),
                "indent with spaces: YAML does not allow tabs for indentation".to_string(),
            )
        } else if m.starts_with("expected")
            || m.starts_with("invalid")
            || m.starts_with("unexpected")
        {
            (
                format!("{}: wrong type: {m}", field_name(&path)),
                "check the value's type (string, number, boolean, list or mapping) against schemas/".to_string(),
            )
        } else {
            (
                m.to_string(),
                "check the value against the schema in schemas/".to_string(),
            )
        };
        Diagnostic::new(self.at(e.pos), message).hint(hint)
    }

    /// The dotted path of the key or item written at `pos`, if any.
    fn path_at(&self, pos: Pos) -> Option<String> {
        self.doc
            .fields
            .iter()
            .filter(|(_, p)| **p == pos)
            .map(|(k, _)| k)
            .max_by_key(|k| k.len())
            .cloned()
            .or_else(|| {
                // A value: the key on the same line, written before it.
                self.doc
                    .fields
                    .iter()
                    .filter(|(_, p)| p.0 == pos.0 && p.1 < pos.1)
                    .max_by_key(|(k, p)| (p.1, k.len()))
                    .map(|(k, _)| k.clone())
            })
    }
}

/// The mapping a key belongs to (`spec.ca.root.keyType` -> `spec.ca.root`,
/// `kind` -> the root).
fn parent_of_key(path: &str) -> String {
    match path.rfind(['.', '[']) {
        Some(i) => path[..i].to_string(),
        None => String::new(),
    }
}

fn parent_of(path: &str) -> String {
    match path.rfind(['.', '[']) {
        Some(i) => path[..i].to_string(),
        None => path.to_string(),
    }
}

fn field_name(path: &Option<String>) -> String {
    match path {
        Some(p) if !p.is_empty() => p.clone(),
        _ => "value".to_string(),
    }
}

fn within_or_field(path: &Option<String>) -> String {
    match path {
        Some(p) if !p.is_empty() => format!(" in {p}"),
        _ => String::new(),
    }
}

/// Splits "`name`, expected one of a, b" into ("name", Some("a, b")).
fn split_expected(rest: &str) -> (&str, Option<&str>) {
    let (name, tail) = rest.split_once(", expected").unwrap_or((rest, ""));
    let name = name.trim().trim_matches('`');
    let tail = tail.trim();
    let list = tail
        .strip_prefix("one of ")
        .or_else(|| (!tail.is_empty()).then_some(tail));
    (name, list.map(str::trim))
}

/// The `Config`'s `spec.cluster.render`, resolved against the root, read
/// ahead of the real load so that the walk can leave it out. Any problem
/// with the file is reported by the real load, not here.
fn configured_render_dir(dir: &Path) -> Option<PathBuf> {
    let file = CONFIG_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|f| f.is_file())?;
    let text = std::fs::read_to_string(file).ok()?;
    let docs = yaml::split(&text).ok()?;
    docs.iter()
        .filter(|d| d.top("kind").is_some_and(|(k, _)| k == "Config"))
        .find_map(|d| yaml::deserialize::<Document<ConfigSpec>>(&text, d).ok())
        .and_then(|c| c.spec.cluster?.render)
        .map(|r| dir.join(r))
}

/// The identity of a cluster object: (API group, kind, namespace, name).
/// The version is not part of it: `cert-manager.io/v1` and a later version
/// of the same kind name the same object.
/// Borrowed from the manifest (a repository's keys are built in bulk).
pub fn manifest_key(m: &Loaded<serde_json::Value>) -> ManifestKey<'_> {
    let api = m.spec["apiVersion"].as_str().unwrap_or_default();
    (
        crate::model::certmanager::group_of(api),
        m.spec["kind"].as_str().unwrap_or_default(),
        m.meta.namespace.as_deref().unwrap_or_default(),
        &m.meta.name,
    )
}

/// (API group, kind, namespace, name) of a cluster object.
pub type ManifestKey<'a> = (&'a str, &'a str, &'a str, &'a str);

/// Describes a cluster object's identity for messages
/// (`cert-manager.io/Issuer sandbox/vault-issuer`).
pub fn describe_key((group, kind, ns, name): &ManifestKey<'_>) -> String {
    let gk = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{group}/{kind}")
    };
    if ns.is_empty() {
        format!("{gk} {name}")
    } else {
        format!("{gk} {ns}/{name}")
    }
}

/// What a duplicate Vault object is called: its kind, and the mount it is
/// on. Kubernetes and AppRole roles share Vault's `auth/<mount>/role/`, so
/// one of each with the same name is one auth role declared twice.
fn duplicate_what(addr: &VaultAddr, kind: &str) -> String {
    match (addr, addr.parent()) {
        (VaultAddr::AuthRole { mount, .. }, _) => format!("auth role on mount {mount}"),
        (_, Some(_)) => format!("{kind} on mount {}", addr.mount_path()),
        (_, None) => kind.to_string(),
    }
}

/// Reports the second (and later) declaration of the same object.
fn check_duplicates(repo: &Repository, diags: &mut Vec<Diagnostic>) {
    let mut manifests: HashMap<ManifestKey<'_>, &Origin> =
        HashMap::with_capacity(repo.manifests.len());
    for m in &repo.manifests {
        let key = manifest_key(m);
        if let Some(first) = manifests.get(&key) {
            diags.push(
                Diagnostic::new(
                    m.origin.at("metadata.name"),
                    format!(
                        "duplicate {}: already declared at {}",
                        describe_key(&key),
                        first.at("metadata.name")
                    ),
                )
                .hint("each cluster object may be declared once; remove or rename one of them"),
            );
        } else {
            manifests.insert(key, &m.origin);
        }
    }
    let mut seen: HashMap<VaultAddr, &Origin> = HashMap::new();
    for o in &repo.vault {
        let key = o.spec.address(&o.meta.name);
        let what = duplicate_what(&key, o.spec.kind());
        if let Some(first) = seen.get(&key) {
            diags.push(
                Diagnostic::new(
                    o.origin.at("metadata.name"),
                    format!(
                        "duplicate {what} {}: already declared at {}",
                        o.meta.name,
                        first.at("metadata.name")
                    ),
                )
                .hint("each object may be declared once; remove or rename one of them"),
            );
        } else {
            seen.insert(key, &o.origin);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread that panics while it reads and splits a file (a parser bug
    /// on some input) does not leave the others waiting for that file's
    /// parts: they end, and the load ends with the panic instead of hanging.
    #[test]
    fn a_panic_while_splitting_does_not_leave_the_others_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path()).unwrap();
        let env = EnvRules::default();
        let jobs = Jobs {
            files: &[],
            queue: Default::default(),
            changed: Default::default(),
            done: Default::default(),
        };
        lock(&jobs.queue).splitting = 1;
        let (ended, wait) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let refs = Refs {
                    root: &root,
                    env: &env,
                    shapes: RefCell::new(HashSet::new()),
                };
                work_on(&jobs, &refs);
                let _ = ended.send(());
            });
            let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _splitting = Splitting(&jobs);
                panic!("a parser bug");
            }));
            assert!(panicked.is_err());
            let ended = wait
                .recv_timeout(std::time::Duration::from_secs(10))
                .is_ok();
            if !ended {
                // Let it go, so that the failure is reported, not a hang.
                lock(&jobs.queue).splitting = 0;
                jobs.changed.notify_all();
            }
            assert!(
                ended,
                "the other thread still waits for the file that panicked"
            );
        });
    }
}
