//! A synthetic QuPath cell file for benchmarks and tests: `n` cells as QuPath 0.4+ writes them
//! (FeatureCollection, one Feature a line, compact JSON).

use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Xorshift64: deterministic for a seed, no crate.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        XorShift((seed ^ 0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal, mean 0 and standard deviation 1 (sum of four uniforms).
    fn normal(&mut self) -> f64 {
        (self.unit() + self.unit() + self.unit() + self.unit() - 2.0) * 3f64.sqrt()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// QuPath's default colours of these classes.
const CLASSES: [(&str, [u8; 3]); 4] =
    [("Tumor", [200, 0, 0]), ("Stroma", [150, 200, 150]), ("Immune cells", [160, 90, 160]), ("Necrosis", [50, 50, 50])];

const MEASUREMENTS: [&str; 5] =
    ["Nucleus: Area µm^2", "Nucleus: Circularity", "Cell: Area µm^2", "DAB: Mean", "Hematoxylin: OD mean"];

/// Micrometres per pixel assumed for the areas written.
const MICRONS_PER_PIXEL: f64 = 0.5;

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut k = digits.len();
    loop {
        k -= 1;
        digits[k] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[k..]);
}

/// `x` with `decimals` digits after the point (trailing zeros kept, as "12.50").
fn push_fixed(out: &mut Vec<u8>, x: f64, decimals: u32) {
    let scale = 10u64.pow(decimals);
    let scaled = (x.abs() * scale as f64).round() as u64;
    if x < 0.0 && scaled != 0 {
        out.push(b'-');
    }
    push_u64(out, scaled / scale);
    out.push(b'.');
    let frac = scaled % scale;
    let mut digits = Vec::with_capacity(decimals as usize);
    push_u64(&mut digits, frac);
    out.extend(std::iter::repeat_n(b'0', decimals as usize - digits.len()));
    out.extend_from_slice(&digits);
}

fn push_ring(out: &mut Vec<u8>, rng: &mut XorShift, c: [f64; 2], r: f64) {
    out.extend_from_slice(b"{\"type\":\"Polygon\",\"coordinates\":[[");
    let phase = rng.unit() * std::f64::consts::TAU;
    let mut first = [0.0; 2];
    for k in 0..=12 {
        let p = if k == 12 {
            first
        } else {
            let t = phase + k as f64 / 12.0 * std::f64::consts::TAU;
            let rr = r * (1.0 + 0.08 * (rng.unit() - 0.5));
            // Rounded as written, so the closing vertex repeats the first exactly.
            [((c[0] + rr * t.cos()) * 100.0).round() / 100.0, ((c[1] + rr * t.sin()) * 100.0).round() / 100.0]
        };
        if k == 0 {
            first = p;
        } else {
            out.push(b',');
        }
        out.push(b'[');
        push_fixed(out, p[0], 2);
        out.push(b',');
        push_fixed(out, p[1], 2);
        out.push(b']');
    }
    out.extend_from_slice(b"]]}");
}

fn push_uuid(out: &mut Vec<u8>, rng: &mut XorShift) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let (a, b) = (rng.next(), rng.next());
    let mut nibbles = [0u8; 32];
    for k in 0..16 {
        nibbles[k] = ((a >> (60 - 4 * k)) & 15) as u8;
        nibbles[16 + k] = ((b >> (60 - 4 * k)) & 15) as u8;
    }
    nibbles[12] = 4;
    nibbles[16] = 8 | (nibbles[16] & 3);
    for (k, &n) in nibbles.iter().enumerate() {
        if matches!(k, 8 | 12 | 16 | 20) {
            out.push(b'-');
        }
        out.push(HEX[usize::from(n)]);
    }
}

/// Write a QuPath-style GeoJSON FeatureCollection of `n` cells over a `width` × `height` px
/// slide to `path` (streamed; about 1 KB a cell): each a 12-gon outline of radius 8–12 px with a
/// 12-gon nucleus inside, `"objectType":"cell"`, a UUID `id`, a `classification` {name, color}
/// among Tumor, Stroma, Immune cells and Necrosis (each cluster mostly one class), and five
/// measurements ("Nucleus: Area µm^2", "Nucleus: Circularity", "Cell: Area µm^2", "DAB: Mean",
/// "Hematoxylin: OD mean") with plausible values. Cells lie in Gaussian clusters of about 2,000
/// (tissue-like), coordinates with 2 decimals. The same seed gives the same file.
pub fn write_synthetic_cells(path: &Path, n: usize, width: f64, height: f64, seed: u64) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = XorShift::new(seed);
    let margin = 15.0f64.min(width / 2.0).min(height / 2.0);
    let clusters: Vec<([f64; 2], f64, usize)> = (0..(n / 2000).clamp(1, 10_000))
        .map(|_| {
            let centre = [margin + rng.unit() * (width - 2.0 * margin), margin + rng.unit() * (height - 2.0 * margin)];
            (centre, 200.0 + rng.unit() * 1500.0, rng.below(CLASSES.len()))
        })
        .collect();
    w.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[")?;
    let mut line = Vec::with_capacity(2048);
    for i in 0..n {
        let (centre, spread, dominant) = clusters[rng.below(clusters.len())];
        let c = [
            (centre[0] + rng.normal() * spread).clamp(margin, width - margin),
            (centre[1] + rng.normal() * spread).clamp(margin, height - margin),
        ];
        let r = 8.0 + rng.unit() * 4.0;
        let rn = r * (0.4 + 0.2 * rng.unit());
        let shift = (r - rn) * 0.3;
        let cn = [c[0] + (rng.unit() - 0.5) * shift, c[1] + (rng.unit() - 0.5) * shift];
        let class = if rng.unit() < 0.7 { dominant } else { rng.below(CLASSES.len()) };
        let (name, color) = CLASSES[class];

        line.clear();
        line.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        line.extend_from_slice(b"{\"type\":\"Feature\",\"id\":\"");
        push_uuid(&mut line, &mut rng);
        line.extend_from_slice(b"\",\"geometry\":");
        push_ring(&mut line, &mut rng, c, r);
        line.extend_from_slice(b",\"properties\":{\"objectType\":\"cell\",\"classification\":{\"name\":\"");
        line.extend_from_slice(name.as_bytes());
        line.extend_from_slice(b"\",\"color\":[");
        for (k, v) in color.iter().enumerate() {
            if k > 0 {
                line.push(b',');
            }
            push_u64(&mut line, u64::from(*v));
        }
        line.extend_from_slice(b"]},\"nucleusGeometry\":");
        push_ring(&mut line, &mut rng, cn, rn);
        let area = |radius: f64| std::f64::consts::PI * radius * radius * MICRONS_PER_PIXEL * MICRONS_PER_PIXEL;
        let dab = if class == 2 { 0.3 + 0.4 * rng.unit() } else { 0.05 + 0.2 * rng.unit() };
        let values = [area(rn), 0.75 + 0.23 * rng.unit(), area(r), dab, 0.2 + 0.7 * rng.unit()];
        line.extend_from_slice(b",\"measurements\":{");
        for (k, (m, v)) in MEASUREMENTS.iter().zip(values).enumerate() {
            if k > 0 {
                line.push(b',');
            }
            line.push(b'"');
            line.extend_from_slice(m.as_bytes());
            line.extend_from_slice(b"\":");
            push_fixed(&mut line, v, 4);
        }
        line.extend_from_slice(b"}}}");
        w.write_all(&line)?;
    }
    w.write_all(b"\n]}\n")?;
    w.flush()?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()
}
