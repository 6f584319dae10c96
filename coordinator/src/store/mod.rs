//! Store backends. The trait is `stilts_common::store::Store`.
