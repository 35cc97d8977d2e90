//! Heartbeat media: bcast, ucast, mcast (UDP) and serial.
