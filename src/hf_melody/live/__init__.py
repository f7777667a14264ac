"""Live playing: a clock, note scheduling, OSC and MIDI transports, controls and the call-and-response session."""
