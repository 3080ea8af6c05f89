#![no_main]

use switchyard_fuzz::drive::{labels, LabelsInput};

libfuzzer_sys::fuzz_target!(|input: LabelsInput| labels(&input));
