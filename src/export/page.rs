//! The Prometheus page's writer: renders the page with [`PromRenderer`], compresses a large
//! one in pieces as it goes, and publishes it to the server's [`PageState`]. The collector
//! calls it when a scrape asks for a page of its newest tick, not at every tick.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::http::{Page, PageGzip, PageState};
use super::prom::PromRenderer;
use crate::collect::Described;
use crate::telemetry::{ProcessStats, Telemetry, set};

/// A page is compressed in pieces of about this size as it is rendered.
const PAGE_PIECE: usize = 64 * 1024;
/// A page this large (uncompressed, the last one's size) is kept only compressed, and
/// compressed as it is rendered; a smaller one is kept plain and compressed on the first
/// request that asks (the measurements: `docs/performance.md`).
const PAGE_COMPRESS_FROM: usize = 1 << 20;
/// Containers (and pods) whose page is about [`PAGE_COMPRESS_FROM`] (3.2 KB each on the
/// OpenTelemetry page), for the first page, which has no last one to go by.
const PAGE_COMPRESS_ROWS: usize = 320;

/// The renderer and the buffers it renders into, kept from one page to the next.
pub struct PageWriter {
    renderer: PromRenderer,
    /// Where the page goes.
    pages: Arc<PageState>,
    /// The piece of the page being rendered, compressed once it reaches [`PAGE_PIECE`].
    piece: Vec<u8>,
    /// The last page's compressed size (the next one's buffer is reserved at it).
    gzip_len: usize,
    /// The last page's size uncompressed: from [`PAGE_COMPRESS_FROM`] on, the next one is
    /// compressed as it is rendered.
    plain_len: usize,
    /// The buffer of the plain page before last, to render the next plain page into.
    spare: Vec<u8>,
}

impl PageWriter {
    pub fn new(renderer: PromRenderer, pages: Arc<PageState>) -> PageWriter {
        PageWriter {
            renderer,
            pages,
            piece: Vec::new(),
            gzip_len: 0,
            plain_len: 0,
            spare: Vec::new(),
        }
    }

    /// Renders the page of `generation` from these containers (`hidden`: the pods' sandboxes,
    /// which are not on the page but name a pod's network on the cAdvisor page) and publishes
    /// it, with the process's own figures read now; the time it took goes to the
    /// `output.duration` self-metric.
    pub fn write(
        &mut self,
        generation: u64,
        now: SystemTime,
        described: Vec<Described<'_>>,
        hidden: Vec<Described<'_>>,
        telemetry: &Telemetry,
    ) {
        let at = Instant::now();
        let process = &ProcessStats::read();
        self.renderer.set_sandboxes(hidden);
        // The first page of a large host is known large by its rows, before any page.
        if self.plain_len >= PAGE_COMPRESS_FROM || described.len() >= PAGE_COMPRESS_ROWS {
            // Compressed in pieces as it is rendered: the plain page is never held whole.
            let mut gz = PageGzip::new(self.gzip_len);
            let mut spill = |piece: &mut Vec<u8>, last: bool| {
                if last || piece.len() >= PAGE_PIECE {
                    gz.write(piece);
                    piece.clear();
                }
            };
            self.renderer.render_with(
                &mut self.piece,
                &mut spill,
                now,
                described,
                telemetry,
                process,
            );
            let page = Page::new(gz, generation);
            self.gzip_len = page.gzipped().len();
            self.plain_len = page.plain_len();
            self.spare = Vec::new();
            self.pages.publish(page);
        } else {
            let mut body = std::mem::take(&mut self.spare);
            self.renderer
                .render(&mut body, now, described, telemetry, process);
            self.plain_len = body.len();
            let old = self.pages.publish(Page::plain_text(body, generation));
            // Reuse the previous page's buffer when no scrape still holds it.
            self.spare = old.into_buffer().unwrap_or_default();
        }
        set(&telemetry.last_render_ns, at.elapsed().as_nanos() as u64);
    }
}
