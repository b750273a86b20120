//! The `ferromega` binary: `ferromega serve` runs the server; every other invocation is the
//! CLI (`-e`, `attach`, `test`, `pipe`) or a tool (`openapi`).

mod discovery;
mod peers;
mod serve;

use clap::{Parser, Subcommand};

/// ferromega: minimega 2.4 rebuilt as one server.
#[derive(Debug, Parser)]
#[command(name = "ferromega", version, about)]
struct Cli {
    /// HTTP address: where the server listens and the CLI dials.
    #[arg(long, global = true, default_value = serve::DEFAULT_ADDR)]
    addr: String,
    /// Namespace the CLI starts in.
    #[arg(long, global = true, default_value = "minimega")]
    namespace: String,
    /// Bearer token for a server started with `--auth` (default: `$FERROMEGA_TOKEN`).
    #[arg(long, global = true)]
    token: Option<String>,
    /// User of the server's auth file, sent with HTTP Basic; the password comes from
    /// `$FERROMEGA_PASSWORD` (default: `$FERROMEGA_USER`).
    #[arg(long, global = true)]
    user: Option<String>,
    /// CA certificate (PEM) to trust for an `https://` --addr: a self-signed server's
    /// own certificate (default: `$FERROMEGA_CA`).
    #[arg(long, global = true)]
    ca: Option<std::path::PathBuf>,
    /// Run one command on the server and print its output.
    #[arg(short = 'e', num_args = 1.., allow_hyphen_values = true, value_name = "COMMAND")]
    execute: Option<Vec<String>>,
    #[command(subcommand)]
    command: Option<Mode>,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Run the server.
    Serve(Box<serve::ServeArgs>),
    /// Interactive shell attached to a running server.
    Attach,
    /// Run minitest-style scripts (`<name>` with `<name>.want`) from a folder.
    Test {
        /// Folder of scripts.
        #[arg(long, default_value = "tests")]
        dir: std::path::PathBuf,
        /// Only run scripts whose name matches this regular expression.
        #[arg(long)]
        run: Option<String>,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Read and write a named pipe: standard input into it, its messages to standard output.
    Pipe {
        /// The pipe.
        name: String,
        /// Only write: end when standard input ends.
        #[arg(long)]
        write_only: bool,
    },
    /// Manage the auth file of `serve --auth`: tokens, users, per-path rules.
    ///
    /// The auth file holds `token NAME sha256:…`, `user NAME $argon2id$…` and
    /// `allow NAME /path/prefix ro|rw` lines. A request is let in when its token or user
    /// has a rule whose prefix covers the path (whole segments) at the access it needs:
    /// `ro` for GETs and operations that only read (`vm info`, `vlans`, `file list`), `rw`
    /// for the rest. A token without rules reaches everything; a user without rules,
    /// nothing. Example: a user of namespace foo only —
    ///   ferromega auth add-user auth.txt alice --password-stdin
    ///   ferromega auth allow auth.txt alice /api/v1/namespaces/foo/ rw
    ///   ferromega auth allow auth.txt alice /ns/foo/ ro
    /// A command line (-e, attach, the console page) may run what the user's requests to
    /// each operation's endpoint may; builtins that change the server for everyone
    /// (.alias, .env, output flags) need `rw` on the pseudo-path `/api/v1/command`.
    #[command(subcommand, verbatim_doc_comment)]
    Auth(AuthCmd),
}

/// `ferromega auth …`: edits of the auth file.
#[derive(Debug, Subcommand)]
enum AuthCmd {
    /// Add a token named NAME to FILE (created if missing); prints the token once.
    AddToken {
        /// The auth file.
        file: std::path::PathBuf,
        /// The token's name.
        name: String,
    },
    /// Add user NAME to FILE (created if missing), or change NAME's password; the
    /// password is read from standard input (one line).
    AddUser {
        /// The auth file.
        file: std::path::PathBuf,
        /// The user's name.
        name: String,
        /// Read the password from standard input (the only way: never on the command
        /// line, where `ps` would show it).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Let NAME (a user or token) reach paths under PREFIX, read-only or read-write.
    Allow {
        /// The auth file.
        file: std::path::PathBuf,
        /// The user or token.
        name: String,
        /// Path prefix: `/api/v1/namespaces/foo/`, `/ns/foo/`, `/api/v1/file/`, `/`.
        prefix: String,
        /// `ro` (reads only) or `rw`.
        #[arg(default_value = "rw", value_parser = ["ro", "rw"])]
        access: String,
    },
    /// Remove NAME's rule for PREFIX.
    Deny {
        /// The auth file.
        file: std::path::PathBuf,
        /// The user or token.
        name: String,
        /// The rule's path prefix.
        prefix: String,
    },
}

/// Runs an `auth` subcommand (no server needed).
fn auth_cmd(cmd: &AuthCmd) -> anyhow::Result<()> {
    use ferromega_http::auth;
    match cmd {
        AuthCmd::AddToken { file, name } => println!("{}", auth::add_token(file, name)?),
        AuthCmd::AddUser { file, name, .. } => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']);
            auth::add_user(file, name, password)?;
        }
        AuthCmd::Allow {
            file,
            name,
            prefix,
            access,
        } => {
            let access = auth::Access::parse(access)
                .ok_or_else(|| anyhow::anyhow!("access is ro or rw, not {access}"))?;
            auth::allow(file, name, prefix, access)?;
        }
        AuthCmd::Deny { file, name, prefix } => auth::deny(file, name, prefix)?,
    }
    Ok(())
}

/// The credentials of the CLI: flags, then the environment.
fn credentials(cli: &Cli) -> anyhow::Result<ferromega_client::Credentials> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let token = cli.token.clone().or_else(|| env("FERROMEGA_TOKEN"));
    let user = cli
        .user
        .clone()
        .or_else(|| env("FERROMEGA_USER"))
        .map(|u| (u, env("FERROMEGA_PASSWORD").unwrap_or_default()));
    let ca = match cli
        .ca
        .clone()
        .or_else(|| env("FERROMEGA_CA").map(Into::into))
    {
        Some(path) => Some(
            std::fs::read(&path).map_err(|e| anyhow::anyhow!("--ca {}: {e}", path.display()))?,
        ),
        None => None,
    };
    Ok(ferromega_client::Credentials { token, user, ca })
}

fn main() -> anyhow::Result<()> {
    // A container's shim: this binary re-executed inside the container's new namespaces.
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(ferromega_host_container::SHIM_ARG))
    {
        ferromega_host_container::shim::main();
    }
    let cli = Cli::parse();
    if let Some(Mode::Serve(args)) = cli.command {
        return serve::serve(*args, cli.addr);
    }
    if let Some(Mode::Auth(cmd)) = &cli.command {
        return auth_cmd(cmd);
    }
    let creds = credentials(&cli)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let client = ferromega_client::Client::connect(&cli.addr, &creds)?;
        if let Some(words) = cli.execute {
            let ok = ferromega_cli::execute(&client, &cli.namespace, &words.join(" ")).await?;
            std::process::exit(if ok { 0 } else { 1 });
        }
        match cli.command {
            Some(Mode::Attach) => ferromega_cli::attach(client).await,
            Some(Mode::Test { dir, run }) => {
                let re = run.map(|r| regex_lite(&r)).transpose()?;
                let runner = ferromega_cli::minitest::Runner::new(client, re);
                let tally = runner.run_dir(&dir).await?;
                println!("{} passed, {} failed", tally.passed, tally.failed);
                std::process::exit(if tally.failed == 0 { 0 } else { 1 });
            }
            Some(Mode::Pipe { name, write_only }) => {
                ferromega_cli::pipe(&client, &cli.namespace, &name, write_only).await
            }
            Some(Mode::Openapi) => {
                let doc = ferromega_http::spec::openapi_json();
                println!("{}", serde_json::to_string_pretty(&doc)?);
                Ok(())
            }
            Some(Mode::Serve(_)) | Some(Mode::Auth(_)) | None => {
                anyhow::bail!(
                    "nothing to do: use `ferromega serve`, `-e <command>`, `attach` or `test`"
                )
            }
        }
    })
}

fn regex_lite(r: &str) -> anyhow::Result<ferromega_cli::minitest::Regex> {
    Ok(ferromega_cli::minitest::Regex::new(r)?)
}
