//! RFB (VNC) server for the device model.
//!
//! This crate will serve a guest's screen to VNC clients (`vncviewer host:domid`) and feed their keys and
//! pointer back into the guest. It depends only on the display and input traits of the `devices` crate, never
//! on a concrete device, so that the SDL front-end and the VNC server see the same abstraction.
//!
//! Not built yet: the display and input issue adds the protocol (RFB 3.3/3.7/3.8), security types, encodings
//! and the listener at display = domain id. Until then `vnc=1` in a config is reported as not available.
