//! `securepipe crdgen`: writes the CustomResourceDefinitions to `crds/`.

use std::path::PathBuf;

/// Write the generated CRD YAML files.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write one `<crd name>.yaml` per resource into.
    #[arg(long, default_value = "crds")]
    output_dir: PathBuf,
    /// Print the CRDs to stdout as one multi-document YAML stream instead.
    #[arg(long, conflicts_with = "output_dir")]
    stdout: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not render the CRDs as YAML")]
    Render(#[source] serde_yaml::Error),
    #[error("could not write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub fn run(args: Args) -> Result<(), Error> {
    let rendered = securepipe_api::crd::render_all().map_err(Error::Render)?;
    if args.stdout {
        for (_, yaml) in rendered {
            print!("---\n{yaml}");
        }
        return Ok(());
    }
    std::fs::create_dir_all(&args.output_dir).map_err(|source| Error::Write {
        path: args.output_dir.clone(),
        source,
    })?;
    for (file, yaml) in rendered {
        let path = args.output_dir.join(file);
        std::fs::write(&path, yaml).map_err(|source| Error::Write { path, source })?;
    }
    Ok(())
}
