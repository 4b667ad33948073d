//! What a head is: its network and file format ([`head`]), the templates of its word that check
//! its candidates ([`templates`]), scores and logits ([`logit`]), and the files that go with a
//! head on disk — its previous version and the lock on both ([`store`]).

pub mod head;
pub mod logit;
pub mod store;
pub mod templates;
