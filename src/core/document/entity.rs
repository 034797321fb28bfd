//! One document entity of any kind, found by (kind, key).

use std::collections::HashMap;

use crate::core::document::validate::identity;
use crate::core::document::{Document, Entity, Gateway, Prompt, Resource, Root, Server, Tool};
use crate::core::kind::Kind;

#[derive(Clone, Copy, Debug)]
pub enum EntityRef<'a> {
    Tool(&'a Tool),
    Gateway(&'a Gateway),
    Server(&'a Server),
    Prompt(&'a Prompt),
    Resource(&'a Resource),
    Root(&'a Root),
}

impl EntityRef<'_> {
    pub fn kind(&self) -> Kind {
        match self {
            EntityRef::Tool(_) => Kind::Tool,
            EntityRef::Gateway(_) => Kind::Gateway,
            EntityRef::Server(_) => Kind::Server,
            EntityRef::Prompt(_) => Kind::Prompt,
            EntityRef::Resource(_) => Kind::Resource,
            EntityRef::Root(_) => Kind::Root,
        }
    }

    pub fn is_active(&self) -> bool {
        match self {
            EntityRef::Tool(x) => x.is_active,
            EntityRef::Gateway(x) => x.is_active,
            EntityRef::Server(x) => x.is_active,
            EntityRef::Prompt(x) => x.is_active,
            EntityRef::Resource(x) => x.is_active,
            EntityRef::Root(_) => true,
        }
    }

    /// The credential type the entity states, if it carries a credential value.
    pub fn auth_type(&self) -> Option<&str> {
        match self {
            EntityRef::Tool(t) => t.auth_value.as_ref().and(t.auth_type.as_deref()),
            EntityRef::Gateway(g) => g.auth_value.as_ref().and(g.auth_type.as_deref()),
            _ => None,
        }
    }
}

/// Every entity of a document by (kind, identity).
pub struct Index<'a> {
    map: HashMap<(Kind, String), EntityRef<'a>>,
}

impl<'a> Index<'a> {
    pub fn new(doc: &'a Document) -> Self {
        let e = &doc.entities;
        let mut map = HashMap::new();
        fn add<'a, E: Entity>(
            map: &mut HashMap<(Kind, String), EntityRef<'a>>,
            v: &'a [E],
            f: fn(&'a E) -> EntityRef<'a>,
        ) {
            for x in v {
                map.entry((E::KIND, identity(E::KIND, x.key())))
                    .or_insert_with(|| f(x));
            }
        }
        add(&mut map, &e.tools, EntityRef::Tool);
        add(&mut map, &e.gateways, EntityRef::Gateway);
        add(&mut map, &e.servers, EntityRef::Server);
        add(&mut map, &e.prompts, EntityRef::Prompt);
        add(&mut map, &e.resources, EntityRef::Resource);
        add(&mut map, &e.roots, EntityRef::Root);
        Index { map }
    }

    pub fn get(&self, kind: Kind, key: &str) -> Option<EntityRef<'a>> {
        self.map.get(&(kind, identity(kind, key))).copied()
    }
}
