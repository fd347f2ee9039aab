//! A faithful local stand-in for the Vonage Video archiving service.
//!
//! Filled in by the opentok-emulator issue.
