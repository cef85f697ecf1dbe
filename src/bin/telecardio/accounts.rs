//! `telecardio user …` and `telecardio token …`: local accounts and machine tokens.

use std::process::ExitCode;

use telecardio::accounts::{AccountError, Accounts};
use telecardio::audit::AuditTrail;
use telecardio::config::Config;

use crate::args::{TokenAction, UserAction};
use crate::{audit_cli, open_index};

async fn accounts(config: Config) -> anyhow::Result<(Accounts, AuditTrail)> {
    let index = open_index(&config).await?;
    let accounts = Accounts::new(index.clone(), std::sync::Arc::new(config))?;
    Ok((accounts, AuditTrail::new(index)))
}

fn read_password(from_stdin: bool, required: bool) -> anyhow::Result<Option<String>> {
    use std::io::IsTerminal;
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        return Ok(Some(password));
    }
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(first == again, "the passwords differ");
        return Ok(Some(first));
    }
    anyhow::ensure!(!required, "give the password with --password-stdin");
    Ok(None)
}

fn exit_for(e: AccountError) -> anyhow::Result<ExitCode> {
    Ok(crate::refused(e.fault(), e))
}

pub async fn user_command(config: Config, action: &UserAction) -> anyhow::Result<ExitCode> {
    let (accounts, audit) = accounts(config).await?;
    match action {
        UserAction::Add {
            name,
            role,
            institution,
            password_stdin,
            pixel_access,
        } => {
            let password = read_password(*password_stdin, false)?;
            match accounts
                .add_user(name, role, institution, password.as_deref(), *pixel_access)
                .await
            {
                Ok(user) => {
                    audit_cli(
                        &audit,
                        "user_added",
                        format!("{} as {}", user.name, user.role),
                    )
                    .await;
                    if password.is_none() {
                        eprintln!("user {name} added without a password: it signs in with API tokens only");
                    } else {
                        eprintln!("user {name} added");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => exit_for(e),
            }
        }
        UserAction::Passwd {
            name,
            password_stdin,
        } => {
            let password = read_password(*password_stdin, true)?.unwrap_or_default();
            match accounts.set_password(name, &password).await {
                Ok(()) => {
                    audit_cli(&audit, "user_password_set", name.clone()).await;
                    eprintln!("password of {name} changed");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => exit_for(e),
            }
        }
        UserAction::Disable { name } => match accounts.disable(name).await {
            Ok(()) => {
                audit_cli(&audit, "user_disabled", name.clone()).await;
                eprintln!("user {name} disabled");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => exit_for(e),
        },
        UserAction::Profile {
            name,
            full_name,
            licence,
        } => match accounts.set_profile(name, full_name, licence).await {
            Ok(()) => {
                audit_cli(
                    &audit,
                    "user_profile_set",
                    format!("{name}: {full_name}, licence {licence}"),
                )
                .await;
                eprintln!("profile of {name} set");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => exit_for(e),
        },
        UserAction::List { json } => {
            let users = accounts.users().await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                print!("{}", telecardio::cli::users_table(&users));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn token_command(config: Config, action: &TokenAction) -> anyhow::Result<ExitCode> {
    let (accounts, audit) = accounts(config).await?;
    match action {
        TokenAction::Create { user, label, days } => {
            match accounts.create_token(user, label, *days).await {
                Ok(issued) => {
                    audit_cli(
                        &audit,
                        "token_created",
                        format!("{} for {user}", issued.row.id),
                    )
                    .await;
                    println!("{}", issued.token);
                    eprintln!(
                        "token {} for {user}: keep it secret; it is not shown again",
                        issued.row.id
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => exit_for(e),
            }
        }
        TokenAction::Revoke { id } => match accounts.revoke_token(id).await {
            Ok(()) => {
                audit_cli(&audit, "token_revoked", id.clone()).await;
                eprintln!("token {id} revoked");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => exit_for(e),
        },
        TokenAction::List { json } => {
            let tokens = accounts.tokens().await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                print!("{}", telecardio::cli::tokens_table(&tokens));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
