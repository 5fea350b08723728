//! Render time of the annotation layer with 50,000 annotations on a 100,000 × 80,000 slide: one
//! whole egui frame (layer painting plus tessellation, what the UI thread pays) at the fitted
//! view, at a 10× view and at 40×, still and while panning, and an edit followed by a query (the
//! spatial index is updated in place).

use criterion::{criterion_group, criterion_main, Criterion};
use wsiview::annotations::{Annotation, Document, Geometry, Polygon};
use wsiview::viewer::annotate::{AnnotationLayer, Projection};
use wsiview::viewer::camera::{Camera, ViewRect};

const SLIDE: [f64; 2] = [100_000.0, 80_000.0];

/// 49,900 cell outlines (12-gons, 8–20 px) spread over the slide, and 100 large regions of
/// 2,000 vertices each.
fn document() -> Document {
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut annotations = Vec::with_capacity(50_000);
    for _ in 0..49_900 {
        let (cx, cy, r) = (rand() * SLIDE[0], rand() * SLIDE[1], 4.0 + rand() * 6.0);
        let ring = (0..12)
            .map(|i| {
                let t = f64::from(i) / 12.0 * std::f64::consts::TAU;
                [cx + r * t.cos(), cy + r * t.sin()]
            })
            .collect();
        annotations.push(Annotation::new(Geometry::Polygon(Polygon { exterior: ring, holes: vec![] })));
    }
    for _ in 0..100 {
        let (cx, cy, r) = (rand() * SLIDE[0], rand() * SLIDE[1], 500.0 + rand() * 3000.0);
        let ring = (0..2000)
            .map(|i| {
                let t = f64::from(i) / 2000.0 * std::f64::consts::TAU;
                let wobble = 1.0 + 0.1 * (t * 17.0).sin();
                [cx + r * wobble * t.cos(), cy + r * wobble * t.sin()]
            })
            .collect();
        annotations.push(Annotation::new(Geometry::Polygon(Polygon { exterior: ring, holes: vec![] })));
    }
    Document::from_annotations(annotations)
}

fn frame(ctx: &egui::Context, layer: &mut AnnotationLayer, projection: &Projection) -> usize {
    let input = egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(1600.0, 1000.0))),
        ..Default::default()
    };
    let output = ctx.run_ui(input, |ui| {
        let painter = ui.painter().clone();
        layer.paint(&painter, projection, None);
    });
    ctx.tessellate(output.shapes, output.pixels_per_point).len()
}

fn bench(c: &mut Criterion) {
    let view = ViewRect { x: 0.0, y: 0.0, width: 1600.0, height: 1000.0 };
    let mut layer = AnnotationLayer::new(document(), Some(wsiview::annotations::PixelSize { x: 0.25, y: 0.25 }));
    let ctx = egui::Context::default();
    let fit = Camera::fit(SLIDE[0], SLIDE[1], &view);
    let center = [SLIDE[0] / 2.0, SLIDE[1] / 2.0];
    let views = [
        ("fit", fit),
        ("10x", Camera { center, zoom: 0.25, rotation: 0.0 }),
        ("40x", Camera { center, zoom: 1.0, rotation: 0.0 }),
    ];
    let mut group = c.benchmark_group("annotations_50k_frame");
    for (name, camera) in views {
        let projection = Projection { camera, view };
        frame(&ctx, &mut layer, &projection); // build the index once
                                              // Panning: the camera moves a little every frame, so the layer is rebuilt each time.
        let mut step = 0u64;
        group.bench_function(format!("{name}_panning"), |b| {
            b.iter(|| {
                step += 1;
                let camera = Camera { center: [camera.center[0] + (step % 100) as f64, camera.center[1]], ..camera };
                frame(&ctx, &mut layer, &Projection { camera, view })
            })
        });
        // A still view: the layer's shapes are reused.
        group.bench_function(format!("{name}_still"), |b| b.iter(|| frame(&ctx, &mut layer, &projection)));
        eprintln!("{name}: {} annotations in view", layer.drawn);
    }
    group.finish();
    c.bench_function("annotations_50k_edit_then_query", |b| {
        b.iter(|| {
            let id = layer.doc.add(Annotation::new(Geometry::Points { points: vec![[10.0, 10.0]] }));
            layer.doc.remove(&[id]);
            layer.doc.query([0.0, 0.0, 1000.0, 1000.0]).len()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
