//! placeholder
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    #[arg(long)]
    pub out: std::path::PathBuf,
}
pub fn generate(_args: &GenerateArgs) -> anyhow::Result<usize> {
    anyhow::bail!("todo")
}
