//! The window itself: SDL set-up, the event loop, drawing frames and passing input on.

use std::sync::Arc;

use devices::display::{Buttons, DisplayConsumer, DisplayHub, Frame, KeyboardInput, PointerInput};
use sdl2::event::{Event, WindowEvent};
use sdl2::keyboard::Scancode;
use sdl2::mouse::{MouseButton, MouseUtil, MouseWheelDirection};
use sdl2::pixels::{Color, PixelFormatEnum};
use sdl2::rect::Rect;
use sdl2::render::{Texture, TextureCreator, WindowCanvas};
use sdl2::video::{FullscreenType, WindowContext};
use sdl2::EventPump;

use super::view::{self, KeyAction, KeyState};
use super::SdlError;
use crate::config::Sdl;

/// How long the loop sleeps in SDL when no input arrives: the display hub changes at most every 33 ms, so a
/// new frame waits at most this long to be drawn, while input wakes the loop at once.
const WAIT_MS: u32 = 10;

/// The open window, before it shows the guest. Lives on the main thread (SDL's objects are not `Send`).
pub struct SdlWindow {
    name: String,
    // Kept for the window's lifetime: dropping the context shuts SDL down.
    _sdl: sdl2::Sdl,
    _video: sdl2::VideoSubsystem,
    canvas: WindowCanvas,
    mouse: MouseUtil,
    events: EventPump,
}

fn sdl_err<E: ToString>(what: &'static str) -> impl FnOnce(E) -> SdlError {
    move |e| SdlError::new(what, e)
}

impl SdlWindow {
    /// Opens the window for domain `name` on the X display `settings` name (or `$DISPLAY`).
    ///
    /// Call before the process starts other threads: `display` and `xauthority` are passed to Xlib through
    /// the environment.
    pub fn open(name: &str, settings: &Sdl) -> Result<SdlWindow, SdlError> {
        if let Some(display) = &settings.x_display {
            std::env::set_var("DISPLAY", display);
        }
        if let Some(auth) = &settings.xauthority {
            std::env::set_var("XAUTHORITY", auth);
        }
        // The runner's SIGINT/SIGTERM handlers end the domain cleanly; SDL must not take those signals over.
        sdl2::hint::set("SDL_NO_SIGNAL_HANDLERS", "1");
        // A full-screen window stays when the focus moves elsewhere (as QEMU sets it).
        sdl2::hint::set("SDL_VIDEO_MINIMIZE_ON_FOCUS_LOSS", "0");
        let sdl = sdl2::init().map_err(sdl_err("initialising SDL"))?;
        let display_name = std::env::var("DISPLAY").unwrap_or_else(|_| "(DISPLAY unset)".into());
        let video = sdl
            .video()
            .map_err(|e| SdlError::new(format!("cannot open the X display {display_name}"), e))?;
        let mut builder = video.window(&view::title(name, false), 640, 480);
        builder.resizable().position_centered();
        if settings.full_screen {
            builder.fullscreen_desktop();
        }
        let window = builder.build().map_err(sdl_err("creating the window"))?;
        // `opengl=0` asks for SDL's software renderer; otherwise SDL picks the best one it has (OpenGL when
        // the display offers it) and falls back to software by itself.
        let canvas = if settings.opengl {
            window.into_canvas()
        } else {
            window.into_canvas().software()
        }
        .build()
        .map_err(sdl_err("creating the renderer"))?;
        let mouse = sdl.mouse();
        let events = sdl.event_pump().map_err(sdl_err("reading events"))?;
        Ok(SdlWindow {
            name: name.to_string(),
            _sdl: sdl,
            _video: video,
            canvas,
            mouse,
            events,
        })
    }

    /// Shows `display` and passes input to the guest until `running` says the machine has ended; closing the
    /// window calls `on_close`. The window closes when this returns.
    pub fn run(
        mut self,
        display: Arc<DisplayHub>,
        keyboard: Arc<dyn KeyboardInput>,
        pointer: Arc<dyn PointerInput>,
        on_close: Box<dyn Fn()>,
        running: &dyn Fn() -> bool,
    ) -> Result<(), SdlError> {
        let consumer = display.subscribe();
        let creator = self.canvas.texture_creator();
        let mut screen = Screen {
            creator: &creator,
            texture: None,
            size: (0, 0),
        };
        let size = self.canvas.window().size();
        let mut ui = Ui {
            name: self.name.clone(),
            keyboard,
            pointer,
            keys: KeyState::default(),
            grabbed: false,
            absolute: false,
            buttons: 0,
            last_pos: (0, 0),
            guest: (0, 0),
            asked: [size; 2],
            user_sized: false,
            redraw: true,
        };
        if Ui::full_screen(&self.canvas) {
            // `fullscreen=1`: full screen starts grabbed, as QEMU's -full-screen does.
            ui.set_grab(true, &mut self.canvas, &self.mouse);
        }
        while running() {
            if let Some(event) = self.events.wait_event_timeout(WAIT_MS) {
                ui.event(event, &mut self.canvas, &self.mouse, &*on_close);
                while let Some(event) = self.events.poll_event() {
                    ui.event(event, &mut self.canvas, &self.mouse, &*on_close);
                }
            }
            ui.show(&consumer, &mut screen, &mut self.canvas)?;
        }
        if ui.grabbed {
            ui.set_grab(false, &mut self.canvas, &self.mouse);
        }
        Ok(())
    }
}

/// The guest screen as an SDL texture of the guest's size.
struct Screen<'a> {
    creator: &'a TextureCreator<WindowContext>,
    texture: Option<Texture<'a>>,
    size: (u32, u32),
}

impl Screen<'_> {
    /// Makes the texture match `frame` (a new one after a mode change); returns whether it was re-created.
    fn fit_to(&mut self, frame: &Frame) -> Result<bool, SdlError> {
        let size = (frame.width, frame.height);
        if size == self.size && (self.texture.is_some() || size.0 == 0 || size.1 == 0) {
            return Ok(false);
        }
        self.size = size;
        self.texture = None;
        if size.0 > 0 && size.1 > 0 {
            // RGB888 is SDL's 32-bit 0x00RRGGBB, the hub's own pixel format: no conversion, and no alpha
            // channel to blend with.
            self.texture = Some(
                self.creator
                    .create_texture_streaming(PixelFormatEnum::RGB888, size.0, size.1)
                    .map_err(sdl_err("creating the screen texture"))?,
            );
        }
        Ok(true)
    }

    /// Copies the `rects` of `frame` into the texture.
    fn upload(&mut self, frame: &Frame, rects: &[devices::display::Rect]) -> Result<(), SdlError> {
        let Some(texture) = &mut self.texture else {
            return Ok(());
        };
        let mut bytes = Vec::new();
        for r in rects.iter().map(|r| r.clamp(frame.width, frame.height)) {
            if r.is_empty() {
                continue;
            }
            bytes.clear();
            for y in r.y..r.y + r.h {
                let row = frame.row(y).unwrap_or_default();
                let part = row
                    .get(r.x as usize..(r.x + r.w) as usize)
                    .unwrap_or_default();
                bytes.extend(part.iter().flat_map(|p| p.to_ne_bytes()));
            }
            texture
                .update(
                    Rect::new(r.x as i32, r.y as i32, r.w, r.h),
                    &bytes,
                    r.w as usize * 4,
                )
                .map_err(sdl_err("updating the screen texture"))?;
        }
        Ok(())
    }
}

/// Everything the window remembers between events.
struct Ui {
    name: String,
    keyboard: Arc<dyn KeyboardInput>,
    pointer: Arc<dyn PointerInput>,
    keys: KeyState,
    /// The pointer is grabbed (SDL relative mouse mode): motion goes to the guest as deltas.
    grabbed: bool,
    /// The guest took the last absolute position (it has a tablet): no grab needed.
    absolute: bool,
    buttons: Buttons,
    /// The last pointer position in the window.
    last_pos: (i32, i32),
    /// The guest screen size shown.
    guest: (u32, u32),
    /// The last two window sizes this program set (the window system may still report the older one); any
    /// other size came from the user or the window manager.
    asked: [(u32, u32); 2],
    /// The user resized the window: it no longer follows the guest's size.
    user_sized: bool,
    /// The window must be drawn again even without a guest change.
    redraw: bool,
}

impl Ui {
    fn full_screen(canvas: &WindowCanvas) -> bool {
        canvas.window().fullscreen_state() != FullscreenType::Off
    }

    fn set_title(&self, canvas: &mut WindowCanvas) {
        if let Err(e) = canvas
            .window_mut()
            .set_title(&view::title(&self.name, self.grabbed))
        {
            log::warn!("SDL window title: {e}");
        }
    }

    fn set_grab(&mut self, on: bool, canvas: &mut WindowCanvas, mouse: &MouseUtil) {
        self.grabbed = on;
        mouse.set_relative_mouse_mode(on);
        canvas.window_mut().set_grab(on);
        self.set_title(canvas);
    }

    fn set_full_screen(&mut self, on: bool, canvas: &mut WindowCanvas, mouse: &MouseUtil) {
        let mode = if on {
            FullscreenType::Desktop
        } else {
            FullscreenType::Off
        };
        if let Err(e) = canvas.window_mut().set_fullscreen(mode) {
            log::warn!("SDL full screen: {e}");
            return;
        }
        if on && !self.grabbed && !self.absolute {
            // Full screen with a relative mouse is only usable grabbed, as in QEMU.
            self.set_grab(true, canvas, mouse);
        }
        if !on && !self.user_sized {
            self.resize_to_guest(canvas);
        }
        self.redraw = true;
    }

    fn resize_to_guest(&mut self, canvas: &mut WindowCanvas) {
        let (w, h) = self.guest;
        if w == 0 || h == 0 || Self::full_screen(canvas) {
            return;
        }
        self.asked = [(w, h), self.asked[0]];
        if let Err(e) = canvas.window_mut().set_size(w, h) {
            log::warn!("SDL window size {w}x{h}: {e}");
        }
    }

    /// Where the guest screen is in the window, in window coordinates (those of mouse events).
    fn placement(&self, canvas: &WindowCanvas) -> view::Placement {
        view::fit(self.guest, canvas.window().size())
    }

    fn key(
        &mut self,
        scancode: Option<Scancode>,
        down: bool,
        canvas: &mut WindowCanvas,
        mouse: &MouseUtil,
    ) {
        let Some(usage) = scancode.and_then(|s| u16::try_from(s as i32).ok()) else {
            return;
        };
        match self.keys.key(usage, down) {
            KeyAction::Guest(code, down) => self.keyboard.key(code, down),
            KeyAction::ToggleGrab => self.set_grab(!self.grabbed, canvas, mouse),
            KeyAction::ToggleFullScreen => {
                let on = !Self::full_screen(canvas);
                self.set_full_screen(on, canvas, mouse);
            }
            KeyAction::None => {}
        }
    }

    /// Sends the pointer state to the guest: relative motion while grabbed, else an absolute position if the
    /// guest takes one.
    fn send_pointer(&mut self, dx: i32, dy: i32, dz: i32, extra: Buttons, canvas: &WindowCanvas) {
        let buttons = self.buttons | extra;
        if self.grabbed {
            self.pointer.relative(dx, dy, dz, buttons);
            return;
        }
        if self.guest.0 == 0 || self.guest.1 == 0 {
            self.absolute = false;
            return;
        }
        let (x, y) = view::to_guest(
            self.placement(canvas),
            self.guest,
            self.last_pos.0,
            self.last_pos.1,
        );
        self.absolute = self
            .pointer
            .absolute(x, y, self.guest.0, self.guest.1, buttons);
    }

    fn event(
        &mut self,
        event: Event,
        canvas: &mut WindowCanvas,
        mouse: &MouseUtil,
        on_close: &dyn Fn(),
    ) {
        match event {
            Event::Quit { .. } => {
                log::info!("SDL window closed: powering the machine off");
                on_close();
            }
            Event::Window { win_event, .. } => match win_event {
                WindowEvent::SizeChanged(w, h) | WindowEvent::Resized(w, h) => {
                    let size = (w.max(0) as u32, h.max(0) as u32);
                    if !Self::full_screen(canvas) && !self.asked.contains(&size) {
                        self.user_sized = true;
                    }
                    self.redraw = true;
                }
                WindowEvent::Exposed | WindowEvent::Shown | WindowEvent::Restored => {
                    self.redraw = true;
                }
                WindowEvent::FocusLost => {
                    // Keys released elsewhere would stay down in the guest.
                    for code in self.keys.release_all() {
                        self.keyboard.key(code, false);
                    }
                    if self.buttons != 0 {
                        self.buttons = 0;
                        self.send_pointer(0, 0, 0, 0, canvas);
                    }
                    if self.grabbed && !Self::full_screen(canvas) {
                        self.set_grab(false, canvas, mouse);
                    }
                }
                _ => {}
            },
            Event::KeyDown { scancode, .. } => self.key(scancode, true, canvas, mouse),
            Event::KeyUp { scancode, .. } => self.key(scancode, false, canvas, mouse),
            Event::MouseMotion {
                x, y, xrel, yrel, ..
            } => {
                self.last_pos = (x, y);
                self.send_pointer(xrel, yrel, 0, 0, canvas);
            }
            Event::MouseButtonDown {
                mouse_btn, x, y, ..
            }
            | Event::MouseButtonUp {
                mouse_btn, x, y, ..
            } => {
                let down = matches!(event, Event::MouseButtonDown { .. });
                let bit = match mouse_btn {
                    MouseButton::Left => view::buttons(true, false, false),
                    MouseButton::Middle => view::buttons(false, true, false),
                    MouseButton::Right => view::buttons(false, false, true),
                    _ => return,
                };
                if !self.grabbed {
                    self.last_pos = (x, y);
                }
                if down {
                    self.buttons |= bit;
                } else {
                    self.buttons &= !bit;
                }
                self.send_pointer(0, 0, 0, 0, canvas);
                if down && !self.grabbed && !self.absolute && mouse_btn == MouseButton::Left {
                    // The guest took no absolute click: it has only a relative mouse, which needs the grab.
                    // The click that grabs is not the guest's (as in QEMU).
                    self.buttons &= !bit;
                    self.set_grab(true, canvas, mouse);
                }
            }
            Event::MouseWheel { y, direction, .. } => {
                let steps = if direction == MouseWheelDirection::Flipped {
                    -y
                } else {
                    y
                };
                let (dz, bit) = view::wheel(steps);
                if bit != 0 {
                    // A notch is a press and a release of the wheel "button", as RFB clients send it.
                    self.send_pointer(0, 0, dz, bit, canvas);
                    self.send_pointer(0, 0, 0, 0, canvas);
                }
            }
            _ => {}
        }
    }

    /// Draws what changed on the guest screen (and everything after a mode change or an expose).
    fn show(
        &mut self,
        consumer: &DisplayConsumer,
        screen: &mut Screen<'_>,
        canvas: &mut WindowCanvas,
    ) -> Result<(), SdlError> {
        // The window redraws rather than copies (it never accepts moves; `into_rects` would paint one anyway).
        let mut rects = consumer.take().into_rects();
        if rects.is_empty() && !self.redraw {
            return Ok(());
        }
        let Some(hub) = consumer.frame() else {
            return Ok(());
        };
        {
            let frame = hub.frame();
            if screen.fit_to(&frame)? {
                // A new mode: the whole screen, and the window follows the guest's size.
                rects = vec![devices::display::Rect::full(frame.width, frame.height)];
                self.guest = (frame.width, frame.height);
                if !self.user_sized {
                    self.resize_to_guest(canvas);
                }
            }
            screen.upload(&frame, &rects)?;
        }
        self.redraw = false;
        canvas.set_draw_color(Color::RGB(0, 0, 0));
        canvas.clear();
        if let Some(texture) = &screen.texture {
            let place = view::fit(
                self.guest,
                canvas
                    .output_size()
                    .map_err(sdl_err("reading the window size"))?,
            );
            canvas
                .copy(
                    texture,
                    None,
                    Rect::new(place.x as i32, place.y as i32, place.w, place.h),
                )
                .map_err(sdl_err("drawing the screen"))?;
        }
        canvas.present();
        Ok(())
    }
}
