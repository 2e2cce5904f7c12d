//! Reading what the user hands the command: a file, or `-` for standard
//! input.

use std::io::Read;
use std::path::Path;

use crate::output::CliError;

/// The text of `path`, or of standard input when it is `-`.
pub fn read_text(path: &Path) -> Result<String, CliError> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::Usage(format!("cannot read standard input: {e}")))?;
    } else {
        text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    }
    Ok(text)
}
