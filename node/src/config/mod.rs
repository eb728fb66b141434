//! The daemon's configuration: every option of `p2pd daemon` (and the data directory)
//! can be given as a flag, an environment variable or a key of a TOML file, and the
//! first of those that is set wins: **flag > environment > file > default**.
//!
//! The options are declared once, as the fields of [`DaemonArgs`](crate::options) with
//! clap's attributes. From each flag `--some-option` this module derives the file key
//! `some-option` and the environment variable `P2PD_SOME_OPTION` ([`command`]), so
//! adding a field adds all three. Every value, wherever it was written, goes through the
//! option's own clap value parser: the file's values are handed to clap as the flags
//! they stand for, below the command line's and the environment's ([`parse`]). A bad
//! value or an unknown key is refused naming where it was written (`file:line`, the
//! variable, or the flag).
//!
//! `p2pd config show` takes the same options as `p2pd daemon` and prints what the daemon
//! would run with and where each value came from ([`Effective`]).

mod file;
mod refusal;
pub mod show;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches};

pub use file::{default_path, ConfigFile, FILE_NAME};
pub use refusal::Refusal;
use refusal::{one_line, suggestion};

use crate::cli::{Cli, Command, ConfigCommand, OpsCommand};
use crate::options::DaemonArgs;

/// The environment variable that names the configuration file, like `--config`.
pub const CONFIG_ENV: &str = "P2PD_CONFIG";

/// Global arguments that are not settings of the daemon (ids of `Cli`'s fields).
const NOT_SETTINGS: [&str; 2] = ["json", "config"];

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The command line.
    Flag,
    /// The setting's environment variable.
    Env,
    /// A line of the configuration file.
    File {
        /// The file.
        path: PathBuf,
        /// The line of its key, from 1.
        line: usize,
    },
    /// Nothing set it.
    Default,
}

/// One setting's effective value.
#[derive(Debug, Clone)]
pub struct Setting {
    /// The file key, which is also the flag's name (`upload-slots`).
    pub key: String,
    /// Its environment variable (`P2PD_UPLOAD_SLOTS`).
    pub env: String,
    /// Its value(s) as text, as written or as defaulted; empty when unset.
    pub values: Vec<String>,
    /// Whether it takes a list of values.
    pub list: bool,
    /// Whether it is true or false.
    pub boolean: bool,
    /// Where the value came from.
    pub source: Source,
}

/// The configuration a daemon runs with, and where it came from.
#[derive(Debug, Clone, Default)]
pub struct Effective {
    /// The configuration file looked at: `--config`, `P2PD_CONFIG`, or the default place.
    pub file: Option<PathBuf>,
    /// Whether that file was there (the default one may be absent).
    pub file_found: bool,
    /// Every setting, the data directory first, then in the order of `p2pd daemon --help`.
    pub settings: Vec<Setting>,
}

/// The environment variable of the setting with file key `key`.
pub fn env_name(key: &str) -> String {
    format!("P2PD_{}", key.to_ascii_uppercase().replace('-', "_"))
}

/// The whole command line definition, with each setting's environment variable, and
/// boolean settings that take an optional value (`--no-mdns=false` overrides a file's
/// `no-mdns = true`). Completions and the man page are generated from it too.
pub fn command() -> clap::Command {
    Cli::command()
        .mut_arg("data_dir", as_setting)
        .mut_subcommand("daemon", |daemon| daemon.mut_args(as_setting))
        .mut_subcommand("config", |config| {
            config.mut_subcommand("show", |show| show.mut_args(as_setting))
        })
}

/// Whether `arg` is a setting: an option with a value or a flag, shown in `--help`.
fn is_setting(arg: &Arg) -> bool {
    arg.get_long().is_some()
        && !arg.is_hide_set()
        && !NOT_SETTINGS.contains(&arg.get_id().as_str())
        && matches!(
            arg.get_action(),
            ArgAction::Set | ArgAction::Append | ArgAction::SetTrue
        )
}

/// Whether `arg` takes a list (a repeatable flag).
fn is_list(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

/// Whether `arg` is true or false.
fn is_boolean(arg: &Arg) -> bool {
    arg.get_value_parser().type_id() == std::any::TypeId::of::<bool>()
}

fn as_setting(arg: Arg) -> Arg {
    if !is_setting(&arg) {
        return arg;
    }
    let env = env_name(arg.get_long().unwrap_or_default());
    let arg = arg.env(env);
    match arg.get_action() {
        ArgAction::SetTrue => arg
            .action(ArgAction::Set)
            .num_args(0..=1)
            .require_equals(true)
            .default_value("false")
            .default_missing_value("true")
            .value_name("BOOL")
            .hide_default_value(true)
            .hide_possible_values(true)
            .value_parser(BoolishValueParser::new()),
        // A list in one environment variable: `P2PD_LISTEN=/ip4/…,/ip4/…`.
        ArgAction::Append => arg.value_delimiter(','),
        _ => arg,
    }
}

/// Parses the command line `args` (the program name first), reading the configuration
/// file and the environment, into the [`Cli`] to run. For `p2pd daemon` and
/// `p2pd config show` every setting is resolved and checked (an unknown key in the file
/// is an error); other commands take only the data directory from the file.
pub fn parse<I, T>(args: I) -> Result<Cli, Refusal>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut root = command();
    root.build();
    let matches = root
        .try_get_matches_from_mut(&argv)
        .map_err(|e| one_line(e, &argv, &HashMap::new(), None))?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(Refusal::Clap)?;
    if matches!(
        cli.command,
        Command::Ops(OpsCommand::Completions { .. } | OpsCommand::Man { .. })
    ) {
        return Ok(cli);
    }
    let (path, required) = match &cli.config {
        Some(path) => (Some(path.clone()), true),
        None => (default_path(), false),
    };
    let file = match &path {
        Some(path) => ConfigFile::load(path, required).map_err(Refusal::Usage)?,
        None => None,
    };
    let daemon = match matches.subcommand() {
        Some(("daemon", m)) => Some((root.find_subcommand("daemon"), m)),
        Some(("config", m)) => m.subcommand_matches("show").map(|m| {
            let show = root
                .find_subcommand("config")
                .and_then(|c| c.find_subcommand("show"));
            (show, m)
        }),
        _ => None,
    };
    let Some((Some(daemon_command), daemon_matches)) = daemon else {
        cli.data_dir = data_dir_only(&root, &matches, file.as_ref(), cli.data_dir)?;
        return Ok(cli);
    };
    let mut resolved = resolve(daemon_command, daemon_matches, file.as_ref(), &argv)?;
    let mut args = DaemonArgs::from_arg_matches(&resolved.matches).map_err(Refusal::Clap)?;
    cli.data_dir = resolved.matches.get_one::<PathBuf>("data_dir").cloned();
    // The default data directory is the platform's: show which it is.
    if let (Some(setting), Ok(dir)) = (
        resolved.settings.iter_mut().find(|s| s.key == "data-dir"),
        crate::paths::data_dir(cli.data_dir.as_deref()),
    ) {
        setting.values = vec![dir.display().to_string()];
    }
    args.config = Effective {
        file: path,
        file_found: file.is_some(),
        settings: resolved.settings,
    };
    match &mut cli.command {
        Command::Daemon(daemon) => *daemon = args,
        Command::Ops(OpsCommand::Config(ConfigCommand::Show(show))) => *show = args,
        _ => {}
    }
    Ok(cli)
}

/// A subcommand's arguments with the file's values merged in, and their sources.
struct Resolved {
    matches: ArgMatches,
    settings: Vec<Setting>,
}

/// Merges the file into what `command` (the `daemon` or `config show` subcommand, with
/// the global arguments) parsed from the command line and the environment: each
/// setting the command line and the environment left unset takes the file's value, as
/// if given as its flag; then clap parses the whole again, so the file's values meet
/// the same parsers.
fn resolve(
    command: &clap::Command,
    parsed: &ArgMatches,
    file: Option<&ConfigFile>,
    argv: &[OsString],
) -> Result<Resolved, Refusal> {
    if let Some(file) = file {
        for entry in file.entries() {
            let known = command
                .get_arguments()
                .any(|arg| is_setting(arg) && arg.get_long() == Some(entry.key.as_str()));
            if !known {
                return Err(Refusal::Usage(format!(
                    "{}: unknown key \"{}\"{}",
                    file.at(entry.line),
                    entry.key,
                    suggestion(command, &entry.key)
                )));
            }
        }
    }
    let mut merged: Vec<OsString> = vec![command.get_name().into()];
    let mut from_file: HashMap<String, usize> = HashMap::new();
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else {
            continue;
        };
        match parsed.value_source(id) {
            Some(ValueSource::CommandLine) => {
                if matches!(arg.get_action(), ArgAction::SetTrue) {
                    merged.push(format!("--{long}").into());
                    continue;
                }
                for raw in parsed.get_raw(id).into_iter().flatten() {
                    merged.push(flag(long, raw));
                }
            }
            Some(ValueSource::EnvVariable) => {} // clap reads it again
            _ => {
                let entry = file.zip(file.and_then(|f| f.get(long)));
                if let (true, Some((file, entry))) = (is_setting(arg), entry) {
                    for value in file_values(file, entry, arg)? {
                        merged.push(flag(long, &value));
                    }
                    from_file.insert(long.to_string(), entry.line);
                }
            }
        }
    }
    let matches = command
        .clone()
        .try_get_matches_from(&merged)
        .map_err(|e| one_line(e, argv, &from_file, file))?;
    let settings = command
        .get_arguments()
        .filter(|arg| is_setting(arg))
        .map(|arg| {
            let id = arg.get_id().as_str();
            let key = arg.get_long().unwrap_or_default().to_string();
            let source = if parsed.value_source(id) == Some(ValueSource::CommandLine) {
                Source::Flag
            } else if let (Some(line), Some(file)) = (from_file.get(&key), file) {
                Source::File {
                    path: file.path.clone(),
                    line: *line,
                }
            } else if matches.value_source(id) == Some(ValueSource::EnvVariable) {
                Source::Env
            } else {
                Source::Default
            };
            // A boolean as true or false, however it was spelt (`yes`, `1`, `on`).
            let values = match is_boolean(arg) {
                true => matches
                    .try_get_one::<bool>(id)
                    .ok()
                    .flatten()
                    .map(|b| vec![b.to_string()])
                    .unwrap_or_default(),
                false => matches
                    .get_raw(id)
                    .into_iter()
                    .flatten()
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect(),
            };
            Setting {
                env: env_name(&key),
                key,
                values,
                list: is_list(arg),
                boolean: is_boolean(arg),
                source,
            }
        })
        .collect();
    // The data directory first: it says where everything else lives.
    let mut settings: Vec<Setting> = settings;
    settings.sort_by_key(|s: &Setting| s.key != "data-dir");
    Ok(Resolved { matches, settings })
}

/// For commands other than the daemon: the data directory, from the command line or the
/// environment (already in `given`), else from the file.
fn data_dir_only(
    root: &clap::Command,
    matches: &ArgMatches,
    file: Option<&ConfigFile>,
    given: Option<PathBuf>,
) -> Result<Option<PathBuf>, Refusal> {
    let from_outside = matches!(
        matches.value_source("data_dir"),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    );
    let entry = file.zip(file.and_then(|f| f.get("data-dir")));
    let arg = root.get_arguments().find(|a| a.get_id() == "data_dir");
    match (from_outside, entry, arg) {
        (false, Some((file, entry)), Some(arg)) => {
            let values = file_values(file, entry, arg)?;
            Ok(values.into_iter().next().map(PathBuf::from))
        }
        _ => Ok(given),
    }
}

/// The values of a file entry for `arg`, as flag values: one unless `arg` is a list;
/// relative paths taken from the file's directory.
fn file_values(file: &ConfigFile, entry: &file::Entry, arg: &Arg) -> Result<Vec<String>, Refusal> {
    let at = file.at(entry.line);
    if entry.is_list && !is_list(arg) {
        return Err(Refusal::Usage(format!(
            "{at}: \"{}\" takes one value, not a list",
            entry.key
        )));
    }
    if entry.values.is_empty() && !arg.get_default_values().is_empty() {
        return Err(Refusal::Usage(format!(
            "{at}: \"{}\" needs at least one value (remove the key for the default)",
            entry.key
        )));
    }
    let is_path = matches!(
        arg.get_value_hint(),
        clap::ValueHint::DirPath | clap::ValueHint::FilePath | clap::ValueHint::AnyPath
    );
    Ok(entry
        .values
        .iter()
        .map(|value| {
            if is_path && !value.is_empty() && Path::new(value).is_relative() {
                file.dir().join(value).to_string_lossy().into_owned()
            } else {
                value.clone()
            }
        })
        .collect())
}

/// `--key=value`: one argument, so that a value starting with `-` stays a value.
fn flag(long: &str, value: impl AsRef<OsStr>) -> OsString {
    let mut arg = OsString::from(format!("--{long}="));
    arg.push(value);
    arg
}

#[cfg(test)]
mod tests;
