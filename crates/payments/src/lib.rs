//! Payment providers: request building, signatures and webhook parsing. No database access;
//! the server decides what a verified event does.

pub mod signature;
