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
    /// Manage the token file of `serve --auth`.
    #[command(subcommand)]
    Auth(AuthCmd),
}

#[derive(Debug, Subcommand)]
enum AuthCmd {
    /// Add a token named NAME to FILE (created if missing); prints the token once.
    AddToken {
        /// The token file.
        file: std::path::PathBuf,
        /// The token's name.
        name: String,
    },
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
    if let Some(Mode::Auth(AuthCmd::AddToken { file, name })) = &cli.command {
        let token = ferromega_http::auth::add_token(file, name)?;
        println!("{token}");
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let token = cli
            .token
            .clone()
            .or_else(|| std::env::var("FERROMEGA_TOKEN").ok())
            .filter(|t| !t.is_empty());
        let client = ferromega_client::Client::with_token(&cli.addr, token.as_deref());
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
