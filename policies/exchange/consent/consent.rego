# METADATA
# title: Consent provisions
# description: >-
#   What the resident's consents (input.consents, the resident's own, in the policy view
#   of consent/model.py) permit: which consent opens which asked-for type to this client,
#   for its purpose and action, and which deny vetoes it. A provision names recipients
#   (organizations or kinds of organization), purposes, data classes (whole types or
#   categories within a type), a period and nested exceptions of the opposite kind.
package exchange.consent

import rego.v1

# METADATA
# title: consent_permit
# description: >-
#   A client sees a type of a resident's record only if its scope, its purpose's
#   minimization list and an active permit of the resident all cover it, and no deny does.
types contains t if {
	some p in permitted
	t := p[1]
	not t in vetoed_types
}

# Which of the resident's consents (by index) permit which of the types asked for, where
# scope, purpose and action allow it at all: evaluated once, read by the rules below.
permitted contains [i, t] if {
	data.exchange.request.client
	input.resident != null
	some t in data.exchange.request.requested
	data.exchange.request.scope_allows(t)
	data.exchange.purposes.rules.fields[t]
	data.exchange.purposes.writable(t)
	data.exchange.purposes.discloses(t)
	not t in data.exchange.static.audit_types
	input.action in data.exchange.purposes.rules.actions
	not resident_managed_write(t)
	some i, c in input.consents
	permits(c, t)
}

# Consents and the like are the resident's to change (or their proxy's), never a client's.
resident_managed_write(t) if {
	data.exchange.request.writing
	t in data.exchange.static.resident_managed_types
}

# The consent versions the decision relies on.
relied_on contains sprintf("%s/_history/%s", [c.id, c.version]) if {
	some p in permitted
	p[1] in types
	c := input.consents[p[0]]
}

# The disclosure forms the consents relied on allow.
forms contains input.consents[p[0]].provision.form if {
	some p in permitted
	p[1] in types
}

active(c) if {
	c.status == "active"
	data.exchange.request.within(c.period)
}

permits(c, t) if {
	active(c)
	p := c.provision
	p.type == "permit"
	actor_named(p)
	input.requester.purpose in p.purposes
	class_covers(p, t)
	data.exchange.request.within(p.period)
	not excepted(p, t)
}

# "my family clinic" names an organization; "any clinic" names a kind of organization.
actor_named(p) if input.requester.organization in p.actors

actor_named(p) if input.requester.organization_kind in p.actor_kinds

# --- data classes: whole resource types, or categories within a type ----------------------

# A category names its type through its code system (policy data): "vital signs" is a
# class of Observation, "problem list" a class of Condition.
category_type(cat) := data.exchange.static.category_systems[cat.system]

# Consents recorded before categories existed have none.
categories_of(p) := object.get(p, "categories", [])

whole(p, _) if {
	count(p.classes) == 0
	count(categories_of(p)) == 0
}

whole(p, t) if t in p.classes

part(p, t) := sort([{"system": cat.system, "code": cat.code} |
	some cat in categories_of(p)
	category_type(cat) == t
])

class_covers(p, t) if whole(p, t)

class_covers(p, t) if count(part(p, t)) > 0

# A nested provision of the opposite kind is an exception: "everything except ...".
excepted(p, t) if {
	some q in p.provisions
	q.type == "deny"
	matches(q, t)
}

# A whole consent that denies (an opt-out) wins over every permit it matches. The set is
# computed once per decision: asking per permit would cost consents squared, and a
# resident with a lifetime of consents would exhaust the engine's instruction budget.
vetoed_types contains t if {
	some t in data.exchange.request.requested
	some c in input.consents
	active(c)
	c.provision.type == "deny"
	matches(c.provision, t)
}

vetoed(t) if t in vetoed_types

deny_applies(q) if {
	any_actor(q)
	any_or_in(q.purposes, input.requester.purpose)
	data.exchange.request.within(q.period)
}

matches(q, t) if {
	deny_applies(q)
	whole(q, t)
}

any_actor(q) if {
	count(q.actors) == 0
	count(q.actor_kinds) == 0
}

any_actor(q) if input.requester.organization in q.actors

any_actor(q) if input.requester.organization_kind in q.actor_kinds

any_or_in(list, _) if count(list) == 0

any_or_in(list, x) if x in list

# METADATA
# title: consent_permit
# description: The resident's consent allowed it.
# custom:
#   reason: consent_permit
#   en: The resident's consent allowed it.
#   zh: 居民的同意书允许此次访问。
reasons contains "consent_permit" if count(types) > 0

# METADATA
# title: resident_managed
# description: Only the resident (or their proxy) may change this.
# custom:
#   reason: resident_managed
#   en: Only the resident (or their proxy) may change this.
#   zh: 只有居民本人（或其代理人）可以修改。
refusals contains "resident_managed" if {
	data.exchange.request.client
	some t in data.exchange.request.requested
	resident_managed_write(t)
}
