mod cli;
mod slt;
mod util;
