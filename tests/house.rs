//! Keeps the house standing (issue #22): the rules of `src/`'s structure, checked on its text.
//!
//! - **Layers.** `src/lib.rs`'s module doc numbers the layers, bottom up
//!   (``//! 4. [`cgroup`]: …``). A file may refer (in `use` lines and in paths in code; comments
//!   do not count) only to modules of its own layer or below.
//! - **No import cycle between files.** Edges come from `use crate::…`, `use super::…`,
//!   `use self::…`, paths through a child module (`docker::run`) and paths in code
//!   (`crate::a::b::f()`), each resolved to the file that defines what it names: the deepest
//!   existing `src/a/b.rs` or `src/a/b/mod.rs`, through the `pub use` re-exports of the files on
//!   the way (a child's `super::Foo`, where `mod.rs` says `pub use store::Foo`, is `store.rs`).
//!   `mod x;` lines and re-export lines themselves are not edges.
//! - **Files of at most 800 lines**, counting the lines before the file's `#[cfg(test)]` module.
//! - **No `Result<_, String>`** outside `src/main.rs` and the `config` module (clap's value
//!   parsers): errors are typed.
//!
//! Pure text reading, no compiler: comments, strings and character literals are blanked first,
//! `use` trees are expanded, modules are files or inline `mod x { … }` blocks. The reader's own
//! tests, at the end, run it on made-up trees.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

/// The most lines a file of `src/` may have before its `#[cfg(test)]` module.
const MAX_LINES: usize = 800;

// ---------------------------------------------------------------------------------------------
// Reading Rust text

/// `src` with comments (doc comments included), string literals and character literals replaced
/// by spaces; line breaks are kept, so line numbers stay those of the file.
fn blank_comments_and_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let blank = |out: &mut String, from: &[char]| {
        for &ch in from {
            out.push(if ch == '\n' { '\n' } else { ' ' });
        }
    };
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && ident(c[i - 1]);
        let end = if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            // A line comment, up to the line break.
            (i..c.len()).find(|&j| c[j] == '\n').unwrap_or(c.len())
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            // A block comment; they nest.
            let (mut j, mut depth) = (i + 2, 1);
            while j < c.len() && depth > 0 {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            j
        } else if let Some(end) = (!prev_ident).then(|| raw_string_end(&c, i)).flatten() {
            end
        } else if c[i] == '"' || (!prev_ident && "bc".contains(c[i]) && c.get(i + 1) == Some(&'"'))
        {
            // A string (`"…"`, `b"…"`, `c"…"`) with its escapes.
            let mut j = if c[i] == '"' { i + 1 } else { i + 2 };
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            j + 1
        } else if c[i] == '\'' || (!prev_ident && c[i] == 'b' && c.get(i + 1) == Some(&'\'')) {
            // A character literal (`'x'`, `'\n'`, `b'x'`), or else a lifetime or label.
            let q = if c[i] == 'b' { i + 1 } else { i };
            if c.get(q + 1) == Some(&'\\') {
                (q + 3..c.len())
                    .find(|&j| c[j] == '\'')
                    .map_or(c.len(), |j| j + 1)
            } else if c.get(q + 2) == Some(&'\'') {
                q + 3
            } else {
                out.push(c[i]);
                i += 1;
                continue;
            }
        } else {
            out.push(c[i]);
            i += 1;
            continue;
        };
        let end = end.min(c.len());
        blank(&mut out, &c[i..end]);
        i = end;
    }
    out
}

/// Where a raw string (`r"…"`, `r#"…"#`, `br"…"`, `cr#"…"#`) starting at `i` ends.
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    let r = if c[i] == 'r' {
        i
    } else if "bc".contains(c[i]) && c.get(i + 1) == Some(&'r') {
        i + 1
    } else {
        return None;
    };
    let hashes = c[r + 1..].iter().take_while(|&&ch| ch == '#').count();
    if c.get(r + 1 + hashes) != Some(&'"') {
        return None;
    }
    let mut j = r + 2 + hashes;
    while j < c.len() {
        if c[j] == '"'
            && c[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&ch| ch == '#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(c.len())
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

impl Token {
    fn is_ident(&self, s: &str) -> bool {
        matches!(&self.tok, Tok::Ident(i) if i == s)
    }
    fn is(&self, ch: char) -> bool {
        self.tok == Tok::Punct(ch)
    }
    fn ident(&self) -> Option<&str> {
        match &self.tok {
            Tok::Ident(i) => Some(i),
            _ => None,
        }
    }
}

/// The tokens of blanked code: identifiers (`r#type` is `type`, `$crate` is `crate`), `::` and
/// single punctuation characters; numbers are dropped.
fn tokens(code: &str) -> Vec<Token> {
    let c: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' || (ch == '$' && c.get(i + 1) == Some(&'c')) {
            let mut start = if ch == '$' { i + 1 } else { i };
            if c[start] == 'r' && c.get(start + 1) == Some(&'#') {
                start += 2;
            }
            let mut j = start;
            while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            out.push(Token {
                tok: Tok::Ident(c[start..j].iter().collect()),
                line,
            });
            i = j.max(i + 1);
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push(Token {
                tok: Tok::PathSep,
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                tok: Tok::Punct(ch),
                line,
            });
            i += 1;
        }
    }
    out
}

/// For each token, the inline modules (`mod tests { … }`) it is in, innermost last.
fn inline_scopes(tokens: &[Token]) -> Vec<Vec<String>> {
    let mut current: Vec<String> = Vec::new();
    // The brace depth at which each open inline module started.
    let mut opened: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut out = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        if t.is('{') {
            depth += 1;
            if i >= 2
                && tokens[i - 2].is_ident("mod")
                && let Some(name) = tokens[i - 1].ident()
            {
                current.push(name.to_string());
                opened.push(depth);
            }
        } else if t.is('}') {
            if opened.last() == Some(&depth) {
                opened.pop();
                current.pop();
            }
            depth = depth.saturating_sub(1);
        }
        out.push(current.clone());
    }
    out
}

/// One name a `use` declaration brings in, its tree expanded.
#[derive(Clone, Debug, PartialEq)]
struct UseItem {
    /// The path as written (`super`, `crate`, a child module's name … first).
    path: Vec<String>,
    /// The name it is known by here (`as` included); `None` for a glob (`path::*`).
    alias: Option<String>,
    /// A `pub` (of any visibility) `use`: a re-export.
    public: bool,
    line: usize,
    /// The inline modules the declaration is in.
    scope: Vec<String>,
}

/// A path written in code outside `use` declarations (`crate::a::f`, `super::X::new`,
/// `docker::run`), up to its last `::ident`.
#[derive(Clone, Debug, PartialEq)]
struct CodePath {
    path: Vec<String>,
    line: usize,
    scope: Vec<String>,
}

/// The `use` items and the code paths of a file's tokens.
fn uses_and_paths(tokens: &[Token], scopes: &[Vec<String>]) -> (Vec<UseItem>, Vec<CodePath>) {
    let mut uses = Vec::new();
    let mut paths = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        // `use<'a>` is a precise-capturing bound, not a declaration.
        if t.is_ident("use") && !tokens.get(i + 1).is_some_and(|n| n.is('<')) {
            let public = is_public(tokens, i);
            let end = (i..tokens.len())
                .find(|&j| tokens[j].is(';'))
                .unwrap_or(tokens.len());
            let mut j = i + 1;
            use_tree(
                &tokens[..end],
                &mut j,
                Vec::new(),
                public,
                &scopes[i],
                &mut uses,
            );
            i = end + 1;
            continue;
        }
        let starts_path = t.ident().is_some()
            && tokens.get(i + 1).is_some_and(|n| n.tok == Tok::PathSep)
            && tokens.get(i + 2).is_some_and(|n| n.ident().is_some())
            && !(i > 0 && tokens[i - 1].tok == Tok::PathSep);
        if starts_path {
            let mut path = vec![t.ident().unwrap().to_string()];
            let mut j = i + 1;
            while tokens.get(j).is_some_and(|n| n.tok == Tok::PathSep)
                && let Some(name) = tokens.get(j + 1).and_then(Token::ident)
            {
                path.push(name.to_string());
                j += 2;
            }
            paths.push(CodePath {
                path,
                line: t.line,
                scope: scopes[i].clone(),
            });
            i = j;
            continue;
        }
        i += 1;
    }
    (uses, paths)
}

/// Whether the `use` at `i` is preceded by `pub` or `pub(…)`.
fn is_public(tokens: &[Token], i: usize) -> bool {
    if i == 0 {
        return false;
    }
    if tokens[i - 1].is_ident("pub") {
        return true;
    }
    if tokens[i - 1].is(')') {
        let open = (0..i - 1).rev().find(|&j| tokens[j].is('('));
        return open.is_some_and(|j| j > 0 && tokens[j - 1].is_ident("pub"));
    }
    false
}

/// Expands the use tree starting at `tokens[*i]` under `prefix` into `out`.
fn use_tree(
    tokens: &[Token],
    i: &mut usize,
    mut prefix: Vec<String>,
    public: bool,
    scope: &[String],
    out: &mut Vec<UseItem>,
) {
    let item = |path: Vec<String>, alias: Option<String>, line: usize| UseItem {
        path,
        alias,
        public,
        line,
        scope: scope.to_vec(),
    };
    while let Some(t) = tokens.get(*i) {
        match &t.tok {
            // A leading `::`: an external crate.
            Tok::PathSep if prefix.is_empty() => {
                prefix.push("::".to_string());
                *i += 1;
            }
            Tok::Ident(name) => {
                *i += 1;
                if tokens.get(*i).is_some_and(|n| n.tok == Tok::PathSep) {
                    prefix.push(name.clone());
                    *i += 1;
                    continue;
                }
                let (path, mut alias) = if name == "self" {
                    (prefix.clone(), prefix.last().cloned())
                } else {
                    let mut p = prefix.clone();
                    p.push(name.clone());
                    (p, Some(name.clone()))
                };
                if tokens.get(*i).is_some_and(|n| n.is_ident("as")) {
                    alias = tokens.get(*i + 1).and_then(Token::ident).map(String::from);
                    *i += 2;
                }
                out.push(item(path, alias, t.line));
                return;
            }
            Tok::Punct('*') => {
                *i += 1;
                out.push(item(prefix, None, t.line));
                return;
            }
            Tok::Punct('{') => {
                *i += 1;
                while let Some(n) = tokens.get(*i) {
                    if n.is('}') {
                        *i += 1;
                        break;
                    }
                    if n.is(',') {
                        *i += 1;
                        continue;
                    }
                    let before = *i;
                    use_tree(tokens, i, prefix.clone(), public, scope, out);
                    if *i == before {
                        *i += 1;
                    }
                }
                return;
            }
            _ => return,
        }
    }
}

/// The names of the items a file defines (any scope): what a glob re-export of it may bring.
fn defined_names(tokens: &[Token]) -> BTreeSet<String> {
    const KEYWORDS: [&str; 9] = [
        "fn", "struct", "enum", "const", "static", "type", "trait", "mod", "union",
    ];
    let mut out = BTreeSet::new();
    for w in tokens.windows(2) {
        if KEYWORDS.iter().any(|k| w[0].is_ident(k))
            && let Some(name) = w[1].ident()
        {
            out.insert(name.to_string());
        }
    }
    for w in tokens.windows(3) {
        if w[0].is_ident("macro_rules")
            && w[1].is('!')
            && let Some(name) = w[2].ident()
        {
            out.insert(name.to_string());
        }
    }
    out
}

/// The line (1-based) of the `#[cfg(test)]` that opens the file's test module, if it has one:
/// a line that is exactly `#[cfg(test)]` at the start, followed (past other attributes and blank
/// lines) by a `mod` line.
fn test_module_line(text: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    (0..lines.len())
        .find(|&i| {
            lines[i].trim_end() == "#[cfg(test)]"
                && lines[i + 1..]
                    .iter()
                    .map(|l| l.trim())
                    .find(|l| !l.is_empty() && !l.starts_with("#["))
                    .is_some_and(|l| l.starts_with("mod ") || l.starts_with("pub mod "))
        })
        .map(|i| i + 1)
}

/// The lines of `Result<_, String>` (`String` as the error type, in any spelling:
/// `std::string::String`, spaces and line breaks anywhere) in blanked code.
fn result_string_lines(tokens: &[Token]) -> Vec<usize> {
    let mut out = Vec::new();
    for i in 0..tokens.len() {
        if !(tokens[i].is_ident("Result") && tokens.get(i + 1).is_some_and(|t| t.is('<'))) {
            continue;
        }
        // The generic arguments, split at the commas of depth 1.
        let mut depth = 0;
        let mut args: Vec<Vec<&Tok>> = vec![Vec::new()];
        for j in i + 1..tokens.len() {
            let t = &tokens[j];
            let arrow = j > 0 && tokens[j - 1].is('-');
            if t.is('<') {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            } else if t.is('>') && !arrow {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            } else if depth == 1 && t.is(',') {
                args.push(Vec::new());
                continue;
            }
            args.last_mut().unwrap().push(&t.tok);
        }
        let error: String = args
            .get(1)
            .map(|a| {
                a.iter()
                    .map(|t| match t {
                        Tok::Ident(s) => s.clone(),
                        Tok::PathSep => "::".to_string(),
                        Tok::Punct(c) => c.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        if matches!(
            error.as_str(),
            "String" | "std::string::String" | "alloc::string::String" | "::std::string::String"
        ) {
            out.push(tokens[i].line);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The crate: files, modules, and where each path leads

/// The module a library file defines: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`,
/// `src/lib.rs` is the crate root (`[]`). `None` for the binary (`src/main.rs`, `src/bin/`).
fn module_of(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix("src/")?.strip_suffix(".rs")?;
    if rest == "main" || rest.starts_with("bin/") {
        return None;
    }
    if rest == "lib" {
        return Some(Vec::new());
    }
    let mut segments: Vec<String> = rest.split('/').map(String::from).collect();
    if segments.last().is_some_and(|s| s == "mod") {
        segments.pop();
    }
    Some(segments)
}

struct File {
    path: String,
    module: Option<Vec<String>>,
    text: String,
    tokens: Vec<Token>,
    uses: Vec<UseItem>,
    paths: Vec<CodePath>,
    /// Inline modules, as absolute module paths.
    inline_modules: BTreeSet<Vec<String>>,
    defines: BTreeSet<String>,
    /// `pub use` names at the file's top: the name, and the absolute path it stands for.
    reexports: Vec<(String, Vec<String>)>,
    /// `pub use x::*` at the file's top: the absolute path of `x`.
    glob_reexports: Vec<Vec<String>>,
    /// Names the file's `use` lines bring in, with the absolute path each stands for.
    locals: BTreeMap<String, Vec<String>>,
}

/// A path of the crate that a file names, resolved.
#[derive(Clone, Debug)]
struct Reference {
    line: usize,
    /// As written: `super::Foo`, `crate::metrics::emit`.
    written: String,
    /// From the crate root: `["metrics", "emit"]`.
    absolute: Vec<String>,
    /// A `pub use` line: a re-export, followed rather than counted as an edge.
    reexport: bool,
    /// A plain `use` of a module itself (`use crate::cgroup::plan;`): a name, like `mod x;`; the
    /// paths through it are resolved where they are written.
    module_name: bool,
}

struct Crate {
    files: BTreeMap<String, File>,
    /// Module path → the file defining it.
    modules: BTreeMap<Vec<String>, String>,
}

impl Crate {
    /// Every `.rs` file under the crate's `src/`.
    fn load() -> Crate {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        let mut dirs = vec![root.join("src")];
        while let Some(dir) = dirs.pop() {
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let rel = path.strip_prefix(root).unwrap().to_string_lossy();
                    let text = std::fs::read_to_string(&path)
                        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                    files.push((rel.replace('\\', "/"), text));
                }
            }
        }
        Crate::new(files)
    }

    /// A crate made of the given files (paths like `src/a/b.rs`).
    fn new(files: Vec<(String, String)>) -> Crate {
        let mut modules = BTreeMap::new();
        let mut parsed = BTreeMap::new();
        for (path, text) in files {
            let module = module_of(&path);
            if let Some(m) = &module {
                modules.insert(m.clone(), path.clone());
            }
            let tokens = tokens(&blank_comments_and_literals(&text));
            let scopes = inline_scopes(&tokens);
            let (uses, paths) = uses_and_paths(&tokens, &scopes);
            let inline_modules = match &module {
                Some(m) => scopes
                    .iter()
                    .filter(|s| !s.is_empty())
                    .map(|s| m.iter().chain(s).cloned().collect())
                    .collect(),
                None => BTreeSet::new(),
            };
            let defines = defined_names(&tokens);
            parsed.insert(
                path.clone(),
                File {
                    path,
                    module,
                    text,
                    tokens,
                    uses,
                    paths,
                    inline_modules,
                    defines,
                    reexports: Vec::new(),
                    glob_reexports: Vec::new(),
                    locals: BTreeMap::new(),
                },
            );
        }
        let mut krate = Crate {
            files: parsed,
            modules,
        };
        // The names each file's `use` lines bring in (a `use` may start from one brought in
        // before it: `use crate::cgroup; use cgroup::plan;`), then its re-exports.
        let paths: Vec<String> = krate.files.keys().cloned().collect();
        for path in paths {
            let file = &krate.files[&path];
            let Some(module) = file.module.clone() else {
                continue;
            };
            let mut locals = BTreeMap::new();
            let (mut reexports, mut globs) = (Vec::new(), Vec::new());
            for u in &file.uses {
                let here: Vec<String> = module.iter().chain(&u.scope).cloned().collect();
                let Some(absolute) = krate.absolute(file, &here, &locals, &u.path) else {
                    continue;
                };
                match &u.alias {
                    Some(alias) => {
                        if u.public && u.scope.is_empty() {
                            reexports.push((alias.clone(), absolute.clone()));
                        }
                        locals.insert(alias.clone(), absolute);
                    }
                    None if u.public && u.scope.is_empty() => globs.push(absolute),
                    None => {}
                }
            }
            let file = krate.files.get_mut(&path).unwrap();
            file.locals = locals;
            file.reexports = reexports;
            file.glob_reexports = globs;
        }
        krate
    }

    fn is_module(&self, module: &[String]) -> bool {
        self.modules.contains_key(module)
    }

    /// `path`, as written in `file` inside module `here` (its inline modules included), from
    /// the crate root; `None` when it names something outside the crate (`std::…`, a crate, a
    /// type's associated item).
    fn absolute(
        &self,
        file: &File,
        here: &[String],
        locals: &BTreeMap<String, Vec<String>>,
        path: &[String],
    ) -> Option<Vec<String>> {
        let mut base = here.to_vec();
        let mut i = 0;
        match path.first()?.as_str() {
            "crate" => {
                base.clear();
                i = 1;
            }
            "self" => i = 1,
            "super" => {
                while path.get(i).is_some_and(|s| s == "super") {
                    base.pop()?;
                    i += 1;
                }
            }
            first => {
                let mut child = here.to_vec();
                child.push(first.to_string());
                if !(self.is_module(&child) || file.inline_modules.contains(&child)) {
                    base = locals.get(first)?.clone();
                    i = 1;
                }
            }
        }
        base.extend(path[i..].iter().cloned());
        Some(base)
    }

    /// Every path of the crate that `file` names, resolved.
    fn references(&self, file: &File) -> Vec<Reference> {
        let Some(module) = &file.module else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for u in &file.uses {
            let here: Vec<String> = module.iter().chain(&u.scope).cloned().collect();
            if let Some(absolute) = self.absolute(file, &here, &file.locals, &u.path) {
                let module_name = u.alias.is_some() && self.is_module(&absolute);
                let mut written = u.path.join("::");
                if u.alias.is_none() {
                    written.push_str("::*");
                }
                out.push(Reference {
                    line: u.line,
                    written,
                    absolute,
                    reexport: u.public,
                    module_name,
                });
            }
        }
        for p in &file.paths {
            let here: Vec<String> = module.iter().chain(&p.scope).cloned().collect();
            if let Some(absolute) = self.absolute(file, &here, &file.locals, &p.path) {
                out.push(Reference {
                    line: p.line,
                    written: p.path.join("::"),
                    absolute,
                    reexport: false,
                    module_name: false,
                });
            }
        }
        out
    }

    /// The file that defines what the absolute `path` names: the deepest module of it that is
    /// a file, then through that file's re-exports, as far as they lead.
    fn defining_file(&self, path: &[String]) -> Option<&str> {
        self.defining_file_within(path, 16)
    }

    fn defining_file_within(&self, path: &[String], hops: usize) -> Option<&str> {
        let n = (0..=path.len())
            .rev()
            .find(|&n| self.is_module(&path[..n]))?;
        let file = &self.files[&self.modules[&path[..n]]];
        let rest = &path[n..];
        if let Some(name) = rest.first()
            && hops > 0
        {
            let through = |target: &[String]| {
                let next: Vec<String> = target.iter().chain(&rest[1..]).cloned().collect();
                self.defining_file_within(&next, hops - 1)
            };
            if let Some((_, target)) = file.reexports.iter().find(|(alias, _)| alias == name) {
                return through(target).or(Some(&file.path));
            }
            for glob in &file.glob_reexports {
                let mut target = glob.clone();
                target.push(name.clone());
                if self.names(&target) {
                    return through(&target).or(Some(&file.path));
                }
            }
        }
        Some(&file.path)
    }

    /// Whether the module of `path`'s parent is a file that defines or re-exports its last
    /// segment.
    fn names(&self, path: &[String]) -> bool {
        let Some((last, parent)) = path.split_last() else {
            return false;
        };
        self.modules.get(parent).is_some_and(|f| {
            let f = &self.files[f];
            f.defines.contains(last) || f.reexports.iter().any(|(a, _)| a == last)
        })
    }

    /// The library's files, in path order.
    fn library(&self) -> impl Iterator<Item = (&File, &Vec<String>)> {
        self.files
            .values()
            .filter_map(|f| f.module.as_ref().map(|m| (f, m)))
    }
}

// ---------------------------------------------------------------------------------------------
// The four rules

/// The layers of `src/lib.rs`'s module doc: lines `//! <n>. <modules>: <what>`, the modules
/// in backquotes before the first colon (``[`cgroup`]`` or, for one that does not exist yet,
/// `` `live` ``). Module → layer number.
fn parse_layers(lib: &str) -> Result<BTreeMap<String, usize>, String> {
    let mut layers = BTreeMap::new();
    for line in lib.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.trim_start();
        let digits = doc.chars().take_while(char::is_ascii_digit).count();
        let Some(rest) = doc[digits..].strip_prefix(". ").filter(|_| digits > 0) else {
            continue;
        };
        let number: usize = doc[..digits].parse().unwrap();
        // The modules: the backquoted names before the first colon outside backquotes.
        let mut inside = false;
        let mut names = Vec::new();
        let mut name = String::new();
        for ch in rest.chars() {
            match ch {
                '`' if inside => {
                    names.push(std::mem::take(&mut name));
                    inside = false;
                }
                '`' => inside = true,
                ':' if !inside => break,
                _ if inside => name.push(ch),
                _ => {}
            }
        }
        if names.is_empty() {
            return Err(format!("layer {number} names no module: {line:?}"));
        }
        for name in names {
            if let Some(other) = layers.insert(name.clone(), number) {
                return Err(format!(
                    "module `{name}` is in two layers, {other} and {number}"
                ));
            }
        }
    }
    if layers.is_empty() {
        return Err("no numbered layer lines (`//! 1. [`config`]: …`)".to_string());
    }
    Ok(layers)
}

/// (a) Every reference to the crate's modules from a module of a lower layer.
fn layer_violations(krate: &Crate, layers: &BTreeMap<String, usize>) -> Vec<String> {
    // By file, then line, then text: (path, line, message).
    let mut out = BTreeSet::new();
    for (file, module) in krate.library() {
        let Some(top) = module.first() else {
            continue;
        };
        let Some(&own) = layers.get(top) else {
            out.insert((
                file.path.clone(),
                0,
                format!(
                    "{}: module `{top}` is in none of the layers src/lib.rs's module doc \
                     lists: add it to the layer it belongs to",
                    file.path
                ),
            ));
            continue;
        };
        for r in krate.references(file) {
            let Some(target) = r.absolute.first() else {
                continue;
            };
            if !krate.is_module(std::slice::from_ref(target)) {
                continue;
            }
            match layers.get(target) {
                Some(&layer) if layer > own => {
                    let text = format!(
                        "{}:{}: `{}` reaches up from `{top}` (layer {own}) to `{target}` \
                         (layer {layer}): a module may use only its own layer or those below; \
                         move what it needs down, or hand it in from above",
                        file.path, r.line, r.written
                    );
                    out.insert((file.path.clone(), r.line, text));
                }
                Some(_) => {}
                None => {
                    let text = format!(
                        "{}:{}: `{}` names module `{target}`, which is in none of the layers \
                         src/lib.rs's module doc lists",
                        file.path, r.line, r.written
                    );
                    out.insert((file.path.clone(), r.line, text));
                }
            }
        }
    }
    out.into_iter().map(|(_, _, text)| text).collect()
}

/// A file → file import: the file whose names `from` uses, and where.
#[derive(Clone, Debug)]
struct Edge {
    from: String,
    to: String,
    line: usize,
    written: String,
}

/// (b) The file → file imports.
fn edges(krate: &Crate) -> Vec<Edge> {
    let mut out = Vec::new();
    for (file, _) in krate.library() {
        for r in krate.references(file) {
            if r.reexport || r.module_name {
                continue;
            }
            let Some(to) = krate.defining_file(&r.absolute) else {
                continue;
            };
            if to != file.path {
                out.push(Edge {
                    from: file.path.clone(),
                    to: to.to_string(),
                    line: r.line,
                    written: r.written,
                });
            }
        }
    }
    out
}

/// (b) Each set of files that import each other in a circle (a strongly connected component of
/// more than one file), with one shortest circle through it and every import that ties it.
fn cycles(edges: &[Edge]) -> Vec<String> {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in edges {
        graph.entry(&e.from).or_default().insert(&e.to);
        graph.entry(&e.to).or_default();
    }
    let mut out = Vec::new();
    for component in strongly_connected(&graph) {
        if component.len() < 2 {
            continue;
        }
        let members: BTreeSet<&str> = component.iter().copied().collect();
        let circle = component
            .iter()
            .filter_map(|start| shortest_cycle(&graph, &members, start))
            .min_by_key(Vec::len)
            .unwrap_or_default();
        let mut text = format!(
            "{} files import each other in a circle, e.g. {}; the imports that tie them:",
            component.len(),
            circle.join(" → ")
        );
        // For each pair of files, each name that ties them, once.
        let mut ties: BTreeMap<(&str, &str), Vec<Tie>> = BTreeMap::new();
        for e in edges {
            if members.contains(e.from.as_str()) && members.contains(e.to.as_str()) {
                let names = ties.entry((&e.from, &e.to)).or_default();
                match names.iter_mut().find(|t| t.written == e.written) {
                    Some(tie) => tie.more += 1,
                    None => names.push(Tie {
                        written: &e.written,
                        line: e.line,
                        more: 0,
                    }),
                }
            }
        }
        for ((from, to), names) in ties {
            let names: Vec<String> = names
                .iter()
                .map(|t| match t.more {
                    0 => format!("`{}` (line {})", t.written, t.line),
                    n => format!("`{}` (line {} and {n} more)", t.written, t.line),
                })
                .collect();
            text.push_str(&format!("\n    {from} → {to}: {}", names.join(", ")));
        }
        out.push(text);
    }
    out
}

/// A name that ties one file of a circle to another: as written, the first line that uses it,
/// and how many more lines do.
struct Tie<'a> {
    written: &'a str,
    line: usize,
    more: usize,
}

/// Tarjan's strongly connected components, each in path order.
fn strongly_connected<'a>(graph: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<Vec<&'a str>> {
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(v: &'a str, graph: &BTreeMap<&'a str, BTreeSet<&'a str>>, s: &mut State<'a>) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for &w in &graph[v] {
            if !s.index.contains_key(w) {
                visit(w, graph, s);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w);
                if w == v {
                    break;
                }
            }
            component.sort_unstable();
            s.out.push(component);
        }
    }
    let mut s = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for &v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(v, graph, &mut s);
        }
    }
    s.out.sort();
    s.out
}

/// The shortest circle from `start` back to it within `members`, as the files on it.
fn shortest_cycle<'a>(
    graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    members: &BTreeSet<&'a str>,
    start: &'a str,
) -> Option<Vec<&'a str>> {
    // Breadth first: the first way back to `start` is a shortest one.
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &graph[v] {
            if !members.contains(w) {
                continue;
            }
            if w == start {
                let mut circle = vec![v];
                while let Some(&before) = came_from.get(circle.last().unwrap()) {
                    circle.push(before);
                }
                circle.reverse();
                circle.push(start);
                return Some(circle);
            }
            if !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    None
}

/// (c) Files past [`MAX_LINES`] before their `#[cfg(test)]` module.
fn long_files(krate: &Crate) -> Vec<String> {
    krate
        .files
        .values()
        .filter_map(|f| {
            let total = f.text.lines().count();
            let tests = test_module_line(&f.text);
            let lines = tests.map_or(total, |l| l - 1);
            (lines > MAX_LINES).then(|| {
                let before = match tests {
                    Some(l) => format!("before its #[cfg(test)] module (line {l})"),
                    None => "(it has no #[cfg(test)] module)".to_string(),
                };
                format!(
                    "{}: {lines} lines {before}, past {MAX_LINES}: split it by responsibility",
                    f.path
                )
            })
        })
        .collect()
}

/// (d) `Result<_, String>` outside `src/main.rs` and the `config` module.
fn string_errors(krate: &Crate) -> Vec<String> {
    let mut out = Vec::new();
    for f in krate.files.values() {
        let allowed = match &f.module {
            None => true,
            Some(m) => m.first().is_some_and(|top| top == "config"),
        };
        if allowed {
            continue;
        }
        for line in result_string_lines(&f.tokens) {
            out.push(format!(
                "{}:{line}: `Result<_, String>`: an error as text; give this layer an error \
                 enum (matched by kind, never by message) and return that",
                f.path
            ));
        }
    }
    out
}

fn fail_with(what: &str, found: &[String]) {
    assert!(
        found.is_empty(),
        "{what} ({} found):\n{}",
        found.len(),
        found.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The house

#[test]
fn no_module_uses_a_higher_layer() {
    let krate = Crate::load();
    let lib = &krate.files["src/lib.rs"].text;
    let layers = parse_layers(lib).unwrap_or_else(|e| panic!("src/lib.rs's layer list: {e}"));
    fail_with(
        "modules that use a higher layer than their own (src/lib.rs lists the layers)",
        &layer_violations(&krate, &layers),
    );
}

#[test]
fn no_file_imports_in_a_circle() {
    let krate = Crate::load();
    fail_with(
        "import circles between files (each file of a circle needs the others: move the shared \
         items into a file of their own, below them all)",
        &cycles(&edges(&krate)),
    );
}

#[test]
fn no_file_is_longer_than_800_lines_outside_its_tests() {
    let krate = Crate::load();
    fail_with(
        "files of src/ past 800 lines before their #[cfg(test)] module",
        &long_files(&krate),
    );
}

#[test]
fn no_error_is_a_string() {
    let krate = Crate::load();
    fail_with(
        "`Result<_, String>` outside src/main.rs and the config module (clap's value parsers)",
        &string_errors(&krate),
    );
}

// ---------------------------------------------------------------------------------------------
// The reader's own tests, on made-up inputs

fn made_up(files: &[(&str, &str)]) -> Crate {
    Crate::new(
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect(),
    )
}

fn idents(code: &str) -> Vec<String> {
    tokens(code)
        .into_iter()
        .filter_map(|t| t.ident().map(String::from))
        .collect()
}

#[test]
fn comments_strings_and_chars_are_blanked_line_breaks_kept() {
    let src = "use crate::a; // crate::b\n/// crate::c\n/* crate::d /* nested */ crate::e */ \
               let s = \"crate::f \\\" crate::g\";\nlet r = r#\"crate::h \"x\" crate::i\"#; \
               let q = '\"'; let e = '\\''; fn f<'a>(x: &'a str) {} let b = b\"crate::j\";";
    let out = blank_comments_and_literals(src);
    assert_eq!(out.lines().count(), src.lines().count());
    assert_eq!(out.matches("crate::").count(), 1, "{out}");
    assert!(out.contains("use crate::a;"));
    assert!(
        out.contains("fn f<'a>(x: &'a str)"),
        "lifetimes stay: {out}"
    );
    assert!(out.contains("let q =    ;"), "{out}");
    assert_eq!(idents(&out)[..3], ["use", "crate", "a"]);
}

#[test]
fn use_trees_are_expanded() {
    let code = "pub(crate) use crate::a::{b, c::{d as e, self}, f::*};\nuse super::X;\n\
                impl Foo for Bar { fn f() -> impl Sized + use<> {} }";
    let toks = tokens(code);
    let (uses, _) = uses_and_paths(&toks, &inline_scopes(&toks));
    let got: Vec<(String, Option<&str>, bool)> = uses
        .iter()
        .map(|u| (u.path.join("::"), u.alias.as_deref(), u.public))
        .collect();
    assert_eq!(
        got,
        [
            ("crate::a::b".to_string(), Some("b"), true),
            ("crate::a::c::d".to_string(), Some("e"), true),
            ("crate::a::c".to_string(), Some("c"), true),
            ("crate::a::f".to_string(), None, true),
            ("super::X".to_string(), Some("X"), false),
        ]
    );
    assert_eq!(uses[4].line, 2);
}

#[test]
fn paths_in_code_are_found_with_their_inline_module() {
    let code = "fn f() { crate::a::b::g(); let v = Vec::<u8>::new(); x.y(); }\n\
                mod tests {\n    fn t() { super::h::K::new(); }\n}\nfn after() { self::z(); }";
    let toks = tokens(code);
    let (_, paths) = uses_and_paths(&toks, &inline_scopes(&toks));
    let got: Vec<(String, usize, Vec<String>)> = paths
        .iter()
        .map(|p| (p.path.join("::"), p.line, p.scope.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("crate::a::b::g".to_string(), 1, vec![]),
            ("super::h::K::new".to_string(), 3, vec!["tests".to_string()]),
            ("self::z".to_string(), 5, vec![]),
        ]
    );
}

#[test]
fn a_path_leads_to_the_file_that_defines_it_through_re_exports() {
    let krate = made_up(&[
        ("src/lib.rs", "pub mod a;\npub mod b;"),
        (
            "src/a/mod.rs",
            "mod store;\nmod view;\npub use store::Foo;\npub use view::*;",
        ),
        ("src/a/store.rs", "pub struct Foo;"),
        ("src/a/view.rs", "use super::Foo;\npub fn show() {}"),
        (
            "src/b.rs",
            "use crate::a;\nfn f() { a::show(); crate::a::Foo; }\n\
             #[cfg(test)]\nmod tests {\n    use super::*;\n}",
        ),
    ]);
    let view = &krate.files["src/a/view.rs"];
    let r = krate.references(view);
    assert_eq!(r[0].absolute, ["a", "Foo"]);
    assert_eq!(krate.defining_file(&r[0].absolute), Some("src/a/store.rs"));
    let found: Vec<(String, String, usize)> = edges(&krate)
        .into_iter()
        .map(|e| (e.from, e.to, e.line))
        .collect();
    assert_eq!(
        found,
        [
            ("src/a/view.rs".into(), "src/a/store.rs".into(), 1),
            ("src/b.rs".into(), "src/a/view.rs".into(), 2),
            ("src/b.rs".into(), "src/a/store.rs".into(), 2),
        ],
        "`use crate::a;` and `mod`/`pub use` lines are no edges; the test module's \
         `super` is b itself"
    );
    assert!(cycles(&edges(&krate)).is_empty());
}

#[test]
fn a_child_using_its_parents_code_while_the_parent_uses_it_is_a_circle() {
    let krate = made_up(&[
        ("src/lib.rs", "pub mod a;"),
        (
            "src/a/mod.rs",
            "mod view;\nuse view::helper;\npub struct Bar;\nfn f() { helper(); }",
        ),
        ("src/a/view.rs", "use super::Bar;\npub fn helper() {}"),
    ]);
    let found = cycles(&edges(&krate));
    assert_eq!(found.len(), 1, "{found:?}");
    let text = &found[0];
    assert!(
        text.contains("src/a/mod.rs → src/a/view.rs → src/a/mod.rs"),
        "{text}"
    );
    assert!(
        text.contains("src/a/mod.rs → src/a/view.rs: `view::helper` (line 2)"),
        "{text}"
    );
    assert!(
        text.contains("src/a/view.rs → src/a/mod.rs: `super::Bar` (line 1)"),
        "{text}"
    );
}

#[test]
fn a_circle_of_three_is_reported_with_its_shortest_round() {
    let krate = made_up(&[
        ("src/lib.rs", "pub mod a;\npub mod b;\npub mod c;"),
        ("src/a.rs", "use crate::b::B;\npub struct A;"),
        ("src/b.rs", "pub struct B;\nfn f() { crate::c::C; }"),
        ("src/c.rs", "pub struct C;\nfn g() { crate::a::A; }"),
    ]);
    let found = cycles(&edges(&krate));
    assert_eq!(found.len(), 1);
    assert!(
        found[0].contains("src/a.rs → src/b.rs → src/c.rs → src/a.rs"),
        "{}",
        found[0]
    );
}

const LAYERS: &str = "//! The crate.\n//!\n//! 1. [`config`], [`remote`]: leaves: flags.\n\
                      //!    More words: `not_a_module`.\n//! 2. [`cgroup`]: reading.\n\
                      //! 3. `live` (later, issue #25): the browser view.\n\
                      //! 4. [`daemon`]: the commands.\n";

#[test]
fn the_layer_list_is_parsed_from_numbered_doc_lines() {
    let layers = parse_layers(LAYERS).unwrap();
    let got: Vec<(&str, usize)> = layers.iter().map(|(m, l)| (m.as_str(), *l)).collect();
    assert_eq!(
        got,
        [
            ("cgroup", 2),
            ("config", 1),
            ("daemon", 4),
            ("live", 3),
            ("remote", 1)
        ]
    );
    assert!(parse_layers("//! 1. [`a`]: x\n//! 2. [`a`]: y").is_err());
    assert!(parse_layers("//! nothing numbered").is_err());
}

#[test]
fn a_reference_up_the_layers_is_named_with_its_line() {
    let krate = made_up(&[
        ("src/lib.rs", LAYERS),
        ("src/config.rs", "pub struct Args;"),
        (
            "src/cgroup/mod.rs",
            "mod reader;\n// crate::daemon::run() in a comment does not count\n",
        ),
        (
            "src/cgroup/reader.rs",
            "use crate::config::Args;\n\nfn f() { crate::daemon::run(); }",
        ),
        ("src/daemon.rs", "use crate::cgroup;\npub fn run() {}"),
        ("src/stray.rs", "pub fn x() {}"),
    ]);
    let layers = parse_layers(LAYERS).unwrap();
    let found = layer_violations(&krate, &layers);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].starts_with(
        "src/cgroup/reader.rs:3: `crate::daemon::run` reaches up from `cgroup` (layer 2) to \
         `daemon` (layer 4)"
    ));
    assert!(found[1].starts_with("src/stray.rs: module `stray` is in none of the layers"));
}

#[test]
fn lines_are_counted_up_to_the_test_module() {
    let body = "fn f() {}\n".repeat(MAX_LINES);
    let long = format!("{body}fn one_more() {{}}\n");
    let tested = format!("{body}#[cfg(test)]\n#[allow(unused)]\nmod tests {{\n}}\n");
    let krate = made_up(&[
        ("src/lib.rs", ""),
        ("src/long.rs", &long),
        ("src/tested.rs", &tested),
        ("src/main.rs", &long),
    ]);
    assert_eq!(test_module_line(&tested), Some(MAX_LINES + 1));
    assert_eq!(test_module_line("#[cfg(test)]\nfn helper() {}\n"), None);
    let found = long_files(&krate);
    assert_eq!(
        found,
        [
            "src/long.rs: 801 lines (it has no #[cfg(test)] module), past 800: split it by \
             responsibility",
            "src/main.rs: 801 lines (it has no #[cfg(test)] module), past 800: split it by \
             responsibility",
        ]
    );
}

#[test]
fn string_errors_are_found_in_every_spelling() {
    let code = "fn a() -> Result<(), String> {}\n\
                fn b() -> Result<\n    Vec<u8>,\n    std::string::String,\n> {}\n\
                fn c() -> Result<String, Error> {}\n\
                fn d() -> Result<Box<dyn Fn() -> u8>, String> {}\n\
                // fn e() -> Result<(), String>\n\
                fn f() -> io::Result<String> {}\n\
                fn g() -> Result<HashMap<String, u8>, Error> {}";
    let toks = tokens(&blank_comments_and_literals(code));
    assert_eq!(result_string_lines(&toks), [1, 2, 7]);
    let krate = made_up(&[
        ("src/lib.rs", ""),
        ("src/main.rs", "fn m() -> Result<(), String> {}"),
        ("src/config/parse.rs", "fn p() -> Result<u8, String> {}"),
        ("src/cgroup/read.rs", "\nfn r() -> Result<u8, String> {}"),
    ]);
    let found = string_errors(&krate);
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("src/cgroup/read.rs:2: `Result<_, String>`"));
}
