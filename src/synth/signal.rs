//! Computed content: echo frames with a beating ellipse, ECG leads with P-QRS-T complexes.

/// One 8-bit frame of a parasternal-like view: a sector of speckle with a chamber whose size
/// follows the cardiac cycle.
pub fn echo_frame(out: &mut [u8], rows: usize, cols: usize, frame: usize) {
    let phase = (frame % 30) as f64 / 30.0 * std::f64::consts::TAU;
    let (cy, cx) = (rows as f64 * 0.55, cols as f64 * 0.5);
    let (ry, rx) = (
        rows as f64 * (0.18 + 0.04 * phase.sin()),
        cols as f64 * 0.12,
    );
    let mut seed = 0x9E37_79B9u32.wrapping_add(frame as u32);
    for (i, px) in out.iter_mut().enumerate().take(rows * cols) {
        let (y, x) = ((i / cols) as f64, (i % cols) as f64);
        // A fan from the top centre, as a phased-array probe draws it.
        let angle = (x - cx).atan2(y + 1.0);
        if angle.abs() > 0.75 || y > rows as f64 * 0.95 {
            *px = 0;
            continue;
        }
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let speckle = (seed & 0x3F) as f64;
        let d = ((y - cy) / ry).powi(2) + ((x - cx) / rx).powi(2);
        let tissue = if d < 1.0 {
            10.0
        } else if d < 1.6 {
            170.0
        } else {
            70.0
        };
        *px = (tissue + speckle).min(255.0) as u8;
    }
}

/// Microvolts of lead `lead` (0..12) at sample `n`, with a heart rate of 72/min.
pub fn ecg_microvolts(lead: usize, n: usize, sampling_hz: f64) -> i16 {
    let t = n as f64 / sampling_hz;
    let beat = 60.0 / 72.0;
    let x = t % beat;
    let wave =
        |centre: f64, width: f64, height: f64| height * (-((x - centre) / width).powi(2)).exp();
    // Each lead sees the complex with its own gain and polarity.
    const GAIN: [f64; 12] = [1.0, 1.4, 0.4, -0.9, 0.3, 0.9, -0.5, 0.2, 0.8, 1.3, 1.2, 0.9];
    let g = GAIN[lead % 12];
    let uv = wave(0.16, 0.025, 120.0)
        + wave(0.30, 0.010, -80.0)
        + wave(0.32, 0.012, 1100.0)
        + wave(0.34, 0.010, -250.0)
        + wave(0.55, 0.045, 280.0);
    let baseline = 30.0 * (t * 0.3 * std::f64::consts::TAU).sin();
    ((uv * g) + baseline) as i16
}
