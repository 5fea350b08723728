//! Drawing a frame's tiles (BENCHMARKS.md, issue 17).
//!
//! Tiles are opaque photographs laid side by side. egui's meshes always blend (premultiplied alpha)
//! and multiply by a vertex colour, and a software rasteriser (Mesa llvmpipe: remote desktops,
//! Xvfb) pays for that on every pixel of every frame. Under eframe's OpenGL renderer the tiles are
//! therefore drawn by a paint callback whose fragment shader only samples the texture, with
//! blending off, one draw call per tile quad (as egui's meshes, one per texture); the background
//! is drawn only where there is no tile. On a GPU that is the same draw calls with less work per
//! fragment. Elsewhere (wgpu, egui_kittest, `WSIVIEW_TILE_DRAW=egui`, a dimmed painter) tiles are
//! drawn as egui images.
//!
//! Under OpenGL the tile textures are the painter's own ([`TilePainter::upload`]), in the window's
//! pixel order (BGRA on desktop OpenGL): Mesa's llvmpipe then copies a 64 × 64 block of a tile
//! shown at one texel per screen pixel, with nearest sampling, as plain rows instead of running the
//! fragment shader on it, and skips the clear under every block a tile covers (BENCHMARKS.md,
//! issue 17). Uploads and deletions are queued and done by the next paint callback, on the UI
//! thread with eframe's context current. Elsewhere tiles are egui textures
//! ([`egui::Context::load_texture`]). The shader is built when the window is made ([`use_gl`]); if
//! it cannot be, tiles are egui textures and images from the first frame.

use std::sync::{Arc, Mutex};

use eframe::egui_glow;
use eframe::glow::{self, HasContext};
use egui::{Color32, Rect, TextureId};

/// A tile texture: egui's, or one of the OpenGL tile painter's own ([`GlTexture`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileTextureRef {
    Egui(TextureId),
    Gl(u64),
}

/// The byte order of the pixels [`TilePainter::upload`] takes: 4 bytes a pixel, premultiplied
/// alpha, rows top to bottom with no padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelOrder {
    /// Blue, green, red, alpha: the window's own order on desktop OpenGL (copied, not converted).
    Bgra,
    /// Red, green, blue, alpha (OpenGL ES, which has no BGRA upload without an extension).
    Rgba,
}

/// A texture of the OpenGL tile painter's own; deleted (by the next paint callback) when dropped.
pub struct GlTexture {
    id: u64,
    queue: Arc<Mutex<GlQueue>>,
}

impl GlTexture {
    pub fn reference(&self) -> TileTextureRef {
        TileTextureRef::Gl(self.id)
    }
}

impl Drop for GlTexture {
    fn drop(&mut self) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).released.push(self.id);
    }
}

/// Textures to make and to delete, done by the next paint callback (which has the GL context).
#[derive(Default)]
struct GlQueue {
    next_id: u64,
    uploads: Vec<Upload>,
    released: Vec<u64>,
}

struct Upload {
    id: u64,
    size: [usize; 2],
    pixels: Vec<u8>,
    nearest: bool,
}

/// One tile (or the part of one) on screen: the texture, where it goes (screen points) and which
/// part of it (UV, 0–1).
#[derive(Clone, Copy, Debug)]
pub struct TileQuad {
    pub texture: TileTextureRef,
    pub rect: Rect,
    pub uv: Rect,
    /// Sample the nearest texel (the texture's own filter otherwise): for a level shown at 1:1,
    /// where it is crisper and, under a software rasteriser, cheaper than interpolating. Drawn as
    /// egui images, the texture's own filter applies.
    pub nearest: bool,
}

/// What a view shows this frame, below everything egui draws over it.
pub struct TileScene {
    /// Tiles, not overlapping, each clipped to its own part of the slide (screen points).
    pub quads: Vec<TileQuad>,
    /// Parts of the view without a tile (outside the slide, tiles with nothing to draw yet),
    /// filled with `background`.
    pub gaps: Vec<Rect>,
    pub background: Color32,
    /// Turn everything above clockwise by this angle (radians) about this point (screen points)
    /// as it is drawn: a rotated view lays its tiles out unturned.
    pub turn: Option<(f32, egui::Pos2)>,
}

/// `p` turned clockwise (y down) by `angle` radians about `pivot`.
pub fn turn(p: egui::Pos2, angle: f32, pivot: egui::Pos2) -> egui::Pos2 {
    let (sin, cos) = angle.sin_cos();
    let d = p - pivot;
    pivot + egui::vec2(d.x * cos - d.y * sin, d.x * sin + d.y * cos)
}

/// The corners of `rect` as drawn (turned by `turn`): top-left, top-right, bottom-left,
/// bottom-right.
fn drawn_corners(rect: Rect, turning: Option<(f32, egui::Pos2)>) -> [egui::Pos2; 4] {
    let corners = [rect.min, egui::pos2(rect.max.x, rect.min.y), egui::pos2(rect.min.x, rect.max.y), rect.max];
    match turning {
        Some((angle, pivot)) => corners.map(|p| turn(p, angle, pivot)),
        None => corners,
    }
}

/// A mesh quad: corners as [`drawn_corners`] gives them, UV of the same corners.
fn add_quad(mesh: &mut egui::Mesh, corners: [egui::Pos2; 4], uv: Rect, color: Color32) {
    let base = mesh.vertices.len() as u32;
    let uvs = [uv.min, egui::pos2(uv.max.x, uv.min.y), egui::pos2(uv.min.x, uv.max.y), uv.max];
    for (pos, uv) in corners.into_iter().zip(uvs) {
        mesh.vertices.push(egui::epaint::Vertex { pos, uv, color });
    }
    mesh.indices.extend([base, base + 1, base + 2, base + 1, base + 3, base + 2]);
}

/// Draws a view's tiles: through OpenGL when the native shell said so ([`use_gl`]).
pub struct TilePainter {
    gl: Option<GlTilesHandle>,
}

impl TilePainter {
    pub fn new(ctx: &egui::Context) -> Self {
        TilePainter { gl: ctx.data(|d| d.get_temp::<GlTilesHandle>(handle_id())) }
    }

    /// The pixel order [`TilePainter::upload`] takes; `None` when tiles are egui textures.
    pub fn pixel_order(&self) -> Option<PixelOrder> {
        self.gl.as_ref().map(|h| h.order)
    }

    /// Queue a texture of `size` (width, height) from `pixels` ([`TilePainter::pixel_order`]),
    /// sampled nearest or bilinear; made by the next paint callback. `None` when tiles are egui
    /// textures here, or `pixels` is not `size`'s length.
    pub fn upload(&self, size: [usize; 2], pixels: Vec<u8>, nearest: bool) -> Option<GlTexture> {
        let handle = self.gl.as_ref()?;
        if size[0].checked_mul(size[1]).and_then(|n| n.checked_mul(4)) != Some(pixels.len()) {
            return None;
        }
        let mut queue = handle.queue.lock().unwrap_or_else(|p| p.into_inner());
        queue.next_id += 1;
        let id = queue.next_id;
        queue.uploads.push(Upload { id, size, pixels, nearest });
        Some(GlTexture { id, queue: handle.queue.clone() })
    }

    /// The shapes that draw `scene` with `painter`: the gaps, and the tiles (clipped to the
    /// painter's clip rectangle). Put them under what egui draws over the tiles.
    pub fn shapes(&self, painter: &egui::Painter, scene: TileScene) -> [egui::Shape; 2] {
        // One mesh of plain rectangles: no feathered edges to blend with what is beside them.
        let turning = scene.turn;
        let mut gaps = egui::Mesh::default();
        for gap in &scene.gaps {
            let white = Rect::from_min_max(egui::epaint::WHITE_UV, egui::epaint::WHITE_UV);
            add_quad(&mut gaps, drawn_corners(*gap, turning), white, scene.background);
        }
        let gaps = egui::Shape::mesh(gaps);
        // The callback draws at full opacity, whatever the painter's (wsiview never dims a view).
        let Some(GlTilesHandle { program: gl, queue, .. }) = self.gl.clone() else {
            let images = scene.quads.iter().filter_map(|q| {
                let TileTextureRef::Egui(texture) = q.texture else { return None };
                Some(match turning {
                    None => egui::Shape::image(texture, q.rect, q.uv, Color32::WHITE),
                    Some(_) => {
                        let mut mesh = egui::Mesh::with_texture(texture);
                        add_quad(&mut mesh, drawn_corners(q.rect, turning), q.uv, Color32::WHITE);
                        egui::Shape::mesh(mesh)
                    }
                })
            });
            return [gaps, egui::Shape::Vec(images.collect())];
        };
        let bounds = scene
            .quads
            .iter()
            .fold(Rect::NOTHING, |b, q| b.union(Rect::from_points(&drawn_corners(q.rect, turning))))
            .intersect(painter.clip_rect());
        if !bounds.is_positive() {
            return [gaps, egui::Shape::Noop];
        }
        let quads = scene.quads;
        let callback = egui_glow::CallbackFn::new(move |info, painter| {
            let mut program = gl.lock().unwrap_or_else(|p| p.into_inner());
            unsafe {
                program.sync(painter.gl(), &queue);
                program.draw(painter, &info, &quads, turning);
            }
        });
        [gaps, egui::Shape::Callback(egui::PaintCallback { rect: bounds, callback: Arc::new(callback) })]
    }

    /// A paint callback that draws nothing and deletes the textures released since the last
    /// paint (and makes the queued ones), at `at` (one point); `None` when none was released or
    /// tiles are egui textures. For a frame in which no view may paint tiles: after the last view
    /// closed, its textures would otherwise stay until another view paints.
    pub fn release_shape(&self, at: egui::Pos2) -> Option<egui::Shape> {
        let GlTilesHandle { program, queue, .. } = self.gl.clone()?;
        if queue.lock().unwrap_or_else(|p| p.into_inner()).released.is_empty() {
            return None;
        }
        let callback = egui_glow::CallbackFn::new(move |_info, painter| {
            let mut program = program.lock().unwrap_or_else(|p| p.into_inner());
            unsafe { program.sync(painter.gl(), &queue) };
        });
        let rect = Rect::from_min_size(at, egui::vec2(1.0, 1.0));
        Some(egui::Shape::Callback(egui::PaintCallback { rect, callback: Arc::new(callback) }))
    }

    /// Whether tiles go through the OpenGL callback (when the painter draws at full opacity).
    pub fn uses_gl(&self) -> bool {
        self.gl.is_some()
    }
}

/// The tile shader and textures, shared by every view's callbacks; in `ctx`'s data when eframe
/// paints with OpenGL and the shader built.
#[derive(Clone)]
struct GlTilesHandle {
    program: Arc<Mutex<Program>>,
    queue: Arc<Mutex<GlQueue>>,
    order: PixelOrder,
}

fn handle_id() -> egui::Id {
    egui::Id::unique("wsiview tile painter")
}

/// Build the tile shader with `gl` (eframe's context, current while the app is made) and draw
/// tiles through it in views of `ctx` made from now on. Called by the native shell when eframe's
/// renderer is glow. `WSIVIEW_TILE_DRAW=egui` keeps egui's meshes; a shader that does not build
/// is reported on stderr and egui's meshes are kept.
pub fn use_gl(ctx: &egui::Context, gl: &glow::Context) {
    if std::env::var("WSIVIEW_TILE_DRAW").is_ok_and(|v| v == "egui") {
        return;
    }
    match unsafe { Program::new(gl) } {
        Ok(program) => {
            // BGRA uploads are core in desktop OpenGL (1.2); ES needs an extension.
            let order = if gl.version().is_embedded { PixelOrder::Rgba } else { PixelOrder::Bgra };
            let handle = GlTilesHandle {
                program: Arc::new(Mutex::new(program)),
                queue: Arc::new(Mutex::new(GlQueue::default())),
                order,
            };
            ctx.data_mut(|d| d.insert_temp(handle_id(), handle));
        }
        Err(e) => eprintln!("wsiview: the tile shader did not build ({e}); drawing tiles as egui images"),
    }
}

struct Program {
    program: glow::Program,
    vao: glow::VertexArray,
    vbo: glow::Buffer,
    u_sampler: Option<glow::UniformLocation>,
    /// A sampler object with nearest filtering (GL 3.3 / ES 3; without it quads use their
    /// texture's filter).
    nearest: Option<glow::Sampler>,
    /// Vertex data, reused between frames: x, y (clip space), u, v per vertex, as bytes.
    vertices: Vec<u8>,
    /// The painter's own textures ([`GlTexture`]), by id.
    textures: std::collections::HashMap<u64, glow::Texture>,
    /// Pixel order of uploads ([`PixelOrder`]), as GL format.
    upload_format: u32,
}

/// Float precision for GLSL ES (as egui's own shaders: high where the GPU has it).
const PRECISION: &str = "#ifdef GL_ES\n#ifdef GL_FRAGMENT_PRECISION_HIGH\nprecision highp float;\n#else\n\
                         precision mediump float;\n#endif\n#endif\n";

/// The shaders for GLSL 1.30+ / ES 3 ("in"/"out") and for older GLSL. The fragment shader is
/// only the texture lookup.
const SHADERS_NEW: [&str; 2] = [
    "in vec2 a_pos;\nin vec2 a_tc;\nout vec2 v_tc;\n\
     void main() { v_tc = a_tc; gl_Position = vec4(a_pos, 0.0, 1.0); }\n",
    "uniform sampler2D u_sampler;\nin vec2 v_tc;\nout vec4 f_color;\n\
     void main() { f_color = texture(u_sampler, v_tc); }\n",
];
const SHADERS_OLD: [&str; 2] = [
    "attribute vec2 a_pos;\nattribute vec2 a_tc;\nvarying vec2 v_tc;\n\
     void main() { v_tc = a_tc; gl_Position = vec4(a_pos, 0.0, 1.0); }\n",
    "uniform sampler2D u_sampler;\nvarying vec2 v_tc;\n\
     void main() { gl_FragColor = texture2D(u_sampler, v_tc); }\n",
];

impl Program {
    unsafe fn new(gl: &glow::Context) -> Result<Self, String> {
        // Vertex array objects (GL 3.0, ES 3.0) are needed; sampler objects (GL 3.3, ES 3.0) are
        // used when there.
        let v = gl.version();
        let (vao, samplers) =
            if v.is_embedded { (v.major >= 3, v.major >= 3) } else { (v.major >= 3, (v.major, v.minor) >= (3, 3)) };
        if !vao {
            return Err(format!("OpenGL {}.{} has no vertex array objects", v.major, v.minor));
        }
        let version = egui_glow::ShaderVersion::get(gl);
        let sources = if version.is_new_shader_interface() { SHADERS_NEW } else { SHADERS_OLD };
        unsafe {
            let program = gl.create_program()?;
            let mut shaders = Vec::new();
            let mut failure = None;
            for (kind, source) in [glow::VERTEX_SHADER, glow::FRAGMENT_SHADER].into_iter().zip(sources) {
                let shader = match gl.create_shader(kind) {
                    Ok(shader) => shader,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                };
                shaders.push(shader);
                let text = format!("{}\n{PRECISION}{source}", version.version_declaration());
                gl.shader_source(shader, &text);
                gl.compile_shader(shader);
                if !gl.get_shader_compile_status(shader) {
                    failure = Some(format!("compile: {}", gl.get_shader_info_log(shader)));
                    break;
                }
                gl.attach_shader(program, shader);
            }
            if failure.is_none() {
                gl.bind_attrib_location(program, 0, "a_pos");
                gl.bind_attrib_location(program, 1, "a_tc");
                gl.link_program(program);
                if !gl.get_program_link_status(program) {
                    failure = Some(format!("link: {}", gl.get_program_info_log(program)));
                }
            }
            for shader in shaders {
                gl.detach_shader(program, shader);
                gl.delete_shader(shader);
            }
            let buffers = match failure {
                None => gl.create_vertex_array().and_then(|vao| match gl.create_buffer() {
                    Ok(vbo) => Ok((vao, vbo)),
                    Err(e) => {
                        gl.delete_vertex_array(vao);
                        Err(e)
                    }
                }),
                Some(e) => Err(e),
            };
            let (vao, vbo) = match buffers {
                Ok(b) => b,
                Err(e) => {
                    gl.delete_program(program);
                    return Err(e);
                }
            };
            let u_sampler = gl.get_uniform_location(program, "u_sampler");
            gl.bind_vertex_array(Some(vao));
            gl.bind_buffer(glow::ARRAY_BUFFER, Some(vbo));
            let float = std::mem::size_of::<f32>() as i32;
            gl.enable_vertex_attrib_array(0);
            gl.vertex_attrib_pointer_f32(0, 2, glow::FLOAT, false, 4 * float, 0);
            gl.enable_vertex_attrib_array(1);
            gl.vertex_attrib_pointer_f32(1, 2, glow::FLOAT, false, 4 * float, 2 * float);
            gl.bind_vertex_array(None);
            gl.bind_buffer(glow::ARRAY_BUFFER, None);
            let nearest = if samplers { gl.create_sampler().ok() } else { None };
            if let Some(sampler) = nearest {
                gl.sampler_parameter_i32(sampler, glow::TEXTURE_MIN_FILTER, glow::NEAREST as i32);
                gl.sampler_parameter_i32(sampler, glow::TEXTURE_MAG_FILTER, glow::NEAREST as i32);
                gl.sampler_parameter_i32(sampler, glow::TEXTURE_WRAP_S, glow::CLAMP_TO_EDGE as i32);
                gl.sampler_parameter_i32(sampler, glow::TEXTURE_WRAP_T, glow::CLAMP_TO_EDGE as i32);
            }
            let upload_format = if gl.version().is_embedded { glow::RGBA } else { glow::BGRA };
            let textures = Default::default();
            Ok(Program { program, vao, vbo, u_sampler, nearest, vertices: Vec::new(), textures, upload_format })
        }
    }

    /// Make the queued textures and delete the released ones (a texture released before it was
    /// made is never made).
    unsafe fn sync(&mut self, gl: &glow::Context, queue: &Mutex<GlQueue>) {
        let (uploads, released) = {
            let mut queue = queue.lock().unwrap_or_else(|p| p.into_inner());
            (std::mem::take(&mut queue.uploads), std::mem::take(&mut queue.released))
        };
        if uploads.is_empty() && released.is_empty() {
            return;
        }
        let released: std::collections::HashSet<u64> = released.into_iter().collect();
        unsafe {
            for id in &released {
                if let Some(texture) = self.textures.remove(id) {
                    gl.delete_texture(texture);
                }
            }
            for upload in uploads.into_iter().filter(|u| !released.contains(&u.id)) {
                let Ok(texture) = gl.create_texture() else { continue };
                let filter = if upload.nearest { glow::NEAREST } else { glow::LINEAR } as i32;
                gl.bind_texture(glow::TEXTURE_2D, Some(texture));
                gl.tex_parameter_i32(glow::TEXTURE_2D, glow::TEXTURE_MIN_FILTER, filter);
                gl.tex_parameter_i32(glow::TEXTURE_2D, glow::TEXTURE_MAG_FILTER, filter);
                gl.tex_parameter_i32(glow::TEXTURE_2D, glow::TEXTURE_WRAP_S, glow::CLAMP_TO_EDGE as i32);
                gl.tex_parameter_i32(glow::TEXTURE_2D, glow::TEXTURE_WRAP_T, glow::CLAMP_TO_EDGE as i32);
                // Rows of 4-byte pixels: any alignment fits; egui sets its own before its uploads.
                gl.pixel_store_i32(glow::UNPACK_ALIGNMENT, 4);
                // Unsized RGBA with BGRA data: Mesa stores it as B8G8R8A8, the window's format.
                gl.tex_image_2d(
                    glow::TEXTURE_2D,
                    0,
                    glow::RGBA as i32,
                    upload.size[0] as i32,
                    upload.size[1] as i32,
                    0,
                    self.upload_format,
                    glow::UNSIGNED_BYTE,
                    glow::PixelUnpackData::Slice(Some(&upload.pixels)),
                );
                self.textures.insert(upload.id, texture);
            }
            gl.bind_texture(glow::TEXTURE_2D, None);
        }
    }

    /// Draw `quads` into the window, one draw call per quad, blending off, within the scissor egui
    /// set for the callback. egui restores its state after a callback (blending, program, vertex
    /// array, viewport, texture unit); sampler objects it never uses, so ours is unbound here.
    unsafe fn draw(
        &mut self,
        painter: &egui_glow::Painter,
        info: &egui::PaintCallbackInfo,
        quads: &[TileQuad],
        turning: Option<(f32, egui::Pos2)>,
    ) {
        let gl = painter.gl();
        let [w, h] = info.screen_size_px;
        let ppp = info.pixels_per_point;
        // Screen points → clip space of the whole window.
        let x = |p: f32| p * ppp / w as f32 * 2.0 - 1.0;
        let y = |p: f32| 1.0 - p * ppp / h as f32 * 2.0;
        self.vertices.clear();
        for q in quads {
            let (u0, u1, v0, v1) = (q.uv.min.x, q.uv.max.x, q.uv.min.y, q.uv.max.y);
            let [a, b, c, d] = drawn_corners(q.rect, turning);
            let corners = [
                [x(a.x), y(a.y), u0, v0],
                [x(b.x), y(b.y), u1, v0],
                [x(c.x), y(c.y), u0, v1],
                [x(d.x), y(d.y), u1, v1],
            ];
            for i in [0, 1, 2, 1, 3, 2] {
                for v in corners[i] {
                    self.vertices.extend_from_slice(&v.to_ne_bytes());
                }
            }
        }
        unsafe {
            gl.viewport(0, 0, w as i32, h as i32);
            gl.disable(glow::BLEND);
            gl.use_program(Some(self.program));
            gl.uniform_1_i32(self.u_sampler.as_ref(), 0);
            gl.active_texture(glow::TEXTURE0);
            gl.bind_vertex_array(Some(self.vao));
            gl.bind_buffer(glow::ARRAY_BUFFER, Some(self.vbo));
            gl.buffer_data_u8_slice(glow::ARRAY_BUFFER, &self.vertices, glow::STREAM_DRAW);
            let (mut bound, mut sampler) = (None, None);
            for (i, q) in quads.iter().enumerate() {
                let texture = match q.texture {
                    TileTextureRef::Egui(id) => painter.texture(id),
                    TileTextureRef::Gl(id) => self.textures.get(&id).copied(),
                };
                let Some(texture) = texture else { continue };
                if bound != Some(texture) {
                    gl.bind_texture(glow::TEXTURE_2D, Some(texture));
                    bound = Some(texture);
                }
                let wanted = if q.nearest { self.nearest } else { None };
                if wanted != sampler {
                    gl.bind_sampler(0, wanted);
                    sampler = wanted;
                }
                gl.draw_arrays(glow::TRIANGLES, (i * 6) as i32, 6);
            }
            if sampler.is_some() {
                gl.bind_sampler(0, None);
            }
            gl.bind_vertex_array(None);
            gl.bind_buffer(glow::ARRAY_BUFFER, None);
            gl.enable(glow::BLEND);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_texture_is_queued_for_deletion() {
        let queue = Arc::new(Mutex::new(GlQueue::default()));
        let texture = GlTexture { id: 7, queue: queue.clone() };
        assert_eq!(texture.reference(), TileTextureRef::Gl(7));
        assert!(queue.lock().unwrap_or_else(|p| p.into_inner()).released.is_empty());
        drop(texture);
        assert_eq!(queue.lock().unwrap_or_else(|p| p.into_inner()).released, vec![7]);
    }
}
