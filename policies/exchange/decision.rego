# METADATA
# title: Disclosure and write decisions
# description: >-
#   The one entry point, data.exchange.decision, for every read, search, export, feed item
#   and write. Input: input.schema.json beside this file. Consents arrive in input (the
#   resident's own), so a decision's cost does not grow with the population.
package exchange

import rego.v1

policy_data := data.exchange.static

requester := input.requester

# METADATA
# title: decision
# description: Allow or deny, with reasons, the consents relied on and obligations.
# entrypoint: true
decision := {
	"allow": count(allowed_types) > 0,
	"reasons": sort([r | some r in reasons]),
	"consents": sort([c | some c in relied_on]),
	"obligations": {
		"form": form,
		"profile": profile,
		"types": {t: fields_for(t) | some t in allowed_types},
		"withhold_labels": withheld_labels,
		"categories": category_rules,
	},
}

requested contains t if some t in input.resource_types

writing if input.action in {"create", "update", "delete"}

interaction := {"read": "r", "search": "s", "create": "c", "update": "u", "delete": "d", "reidentify": "r"}[input.action]

client if requester.kind == "client"

allowed_types := ((((((resident_types | directory_types) | registration_types) | consent_types) | audit_types) | break_glass_types) | proxy_types) | reidentify_types

# --- the resident themself --------------------------------------------------------------

# METADATA
# title: resident_self
# description: A resident may read their whole record and manage their own consents.
self_access if {
	requester.kind == "resident"
	input.resident != null
	requester.resident == input.resident
}

resident_types contains t if {
	self_access
	not writing
	some t in requested
}

resident_types contains t if {
	self_access
	writing
	some t in requested
	t in policy_data.resident_writable_types
}

# --- clients ----------------------------------------------------------------------------

scope_allows(t) if {
	some s in requester.scopes
	s.resource_type in {t, "*"}
	contains(s.interactions, interaction)
}

purpose_rules := policy_data.purposes[requester.purpose]

# METADATA
# title: directory
# description: The community directory (organizations) is readable by every client.
directory_types contains t if {
	client
	input.resident == null
	not writing
	some t in requested
	t in policy_data.directory_types
	scope_allows(t)
}

# METADATA
# title: audit_oversight
# description: >-
#   The audit trail is open to oversight organizations acting for compliance, in full,
#   and to each resident for their own record (resident_self). Never to other clients.
audit_types contains t if {
	client
	not writing
	some t in requested
	t in policy_data.audit_types
	requester.organization_kind in policy_data.oversight_kinds
	requester.purpose in policy_data.oversight_purposes
	scope_allows(t)
}

# METADATA
# title: reidentification
# description: >-
#   Turning a pseudonymized disclosure's token back into a resident is an exchange-side
#   act, open only to oversight organizations acting for compliance; it is audited.
reidentify_types contains "Patient" if {
	client
	input.action == "reidentify"
	requester.organization_kind in policy_data.oversight_kinds
	requester.purpose in policy_data.oversight_purposes
}

# METADATA
# title: registration
# description: A clinic may register a new resident; it sees them only once they consent.
registration_types contains "Patient" if {
	client
	input.action == "create"
	"Patient" in requested
	count(input.consents) == 0
	requester.organization_kind in policy_data.registering_kinds
	requester.purpose == "TREAT"
	scope_allows("Patient")
}

# METADATA
# title: consent_permit
# description: >-
#   A client sees a type of a resident's record only if its scope, its purpose's
#   minimization list and an active permit of the resident all cover it, and no deny does.
consent_types contains t if {
	some p in permitted
	t := p[1]
	not vetoed(t)
}

# Which of the resident's consents (by index) permit which of the types asked for, where
# scope, purpose and action allow it at all: evaluated once, read by the rules below.
permitted contains [i, t] if {
	client
	input.resident != null
	some t in requested
	scope_allows(t)
	purpose_rules.fields[t]
	not t in policy_data.audit_types
	input.action in purpose_rules.actions
	not resident_managed_write(t)
	some i, c in input.consents
	permits(c, t)
}

resident_managed_write(t) if {
	writing
	t in policy_data.resident_managed_types
}

relied_on contains sprintf("%s/_history/%s", [c.id, c.version]) if {
	some p in permitted
	p[1] in consent_types
	c := input.consents[p[0]]
}

active(c) if {
	c.status == "active"
	within(c.period)
}

within(p) if {
	starts_ok(p)
	ends_ok(p)
}

starts_ok(p) if p.start == null

starts_ok(p) if p.start <= input.now

ends_ok(p) if p.end == null

ends_ok(p) if input.now < p.end

permits(c, t) if {
	active(c)
	p := c.provision
	p.type == "permit"
	actor_named(p)
	requester.purpose in p.purposes
	class_covers(p, t)
	within(p.period)
	not excepted(p, t)
}

# "my family clinic" names an organization; "any clinic" names a kind of organization.
actor_named(p) if requester.organization in p.actors

actor_named(p) if requester.organization_kind in p.actor_kinds

# --- data classes: whole resource types, or categories within a type ----------------------

# A category names its type through its code system (policy data): "vital signs" is a
# class of Observation, "problem list" a class of Condition.
category_type(cat) := policy_data.category_systems[cat.system]

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

# A whole consent that denies (an opt-out) wins over every permit it matches.
vetoed(t) if {
	some c in input.consents
	active(c)
	c.provision.type == "deny"
	matches(c.provision, t)
}

deny_applies(q) if {
	any_actor(q)
	any_or_in(q.purposes, requester.purpose)
	within(q.period)
}

matches(q, t) if {
	deny_applies(q)
	whole(q, t)
}

any_actor(q) if {
	count(q.actors) == 0
	count(q.actor_kinds) == 0
}

any_actor(q) if requester.organization in q.actors

any_actor(q) if requester.organization_kind in q.actor_kinds

any_or_in(list, _) if count(list) == 0

any_or_in(list, x) if x in list

# METADATA
# title: break_glass
# description: >-
#   Emergency treatment without consent: a clinic with purpose ETREAT may read if it
#   states a reason, unless the resident opted out. The road flags it in the audit trail
#   and in the resident's access history.
break_glass_types contains t if {
	client
	input.resident != null
	not writing
	requester.purpose == policy_data.break_glass.purpose
	requester.organization_kind in policy_data.break_glass.allowed_kinds
	break_glass_reason_given
	not break_glass_opted_out
	some t in requested
	scope_allows(t)
	purpose_rules.fields[t]
	not t in policy_data.audit_types
	not vetoed(t)
}

break_glass_reason_given if {
	count(trim_space(input.context.break_glass_reason)) >= policy_data.break_glass.min_reason_length
}

break_glass_opted_out if {
	policy_data.break_glass.opt_out_allowed
	some c in input.consents
	active(c)
	c.provision.type == "deny"
	policy_data.break_glass.purpose in c.provision.purposes
}

# METADATA
# title: proxy
# description: >-
#   A family member or guardian the resident registered acts for them within the rights
#   and the period of the delegation, and every act is recorded as the proxy's.
proxy_types contains t if {
	requester.kind == "proxy"
	input.resident != null
	requester.resident == input.resident
	delegation := requester.delegation
	delegation.active
	within(delegation.period)
	some right in delegation.rights
	input.action in policy_data.proxy_rights[right]
	some t in requested
	proxy_may(right, t)
}

proxy_may("read", _) := true

proxy_may("consent", t) := true if t in policy_data.resident_writable_types

proxy_reading if {
	requester.kind == "proxy"
	count(proxy_types) > 0
	not writing
}

# --- obligations ------------------------------------------------------------------------

# The stricter of what the purpose needs and what the consents relied on allow.
default form := "identified"

form := "identified" if {
	not client
} else := "pseudonymized" if {
	"pseudonymized" in consent_forms
} else := purpose_rules.form if {
	purpose_rules.form
}

# The de-identification profile the road applies (policies/exchange/profiles/): the
# form's own, or a stronger one the purpose names (research).
default profile := "pseudonymized"

profile := policy_data.profiles.identified if {
	form == "identified"
} else := policy_data.profiles.identified if {
	input.resident == null # the directory: organizations, not people
} else := purpose_rules.profile if {
	purpose_rules.profile
} else := policy_data.profiles[form]

consent_forms contains input.consents[p[0]].provision.form if {
	some p in permitted
	p[1] in consent_types
}

fields_for(_) := ["*"] if self_access

fields_for(_) := ["*"] if proxy_reading

fields_for(t) := purpose_rules.fields[t] if {
	not self_access
	not proxy_reading
	purpose_rules.fields[t]
}

fields_for(t) := ["*"] if {
	not self_access
	not proxy_reading
	not purpose_rules.fields[t]
}

# METADATA
# title: data_classes
# description: >-
#   Where consents open only some categories of a type, or deny some, the road keeps a
#   resource if one grant admits its categories and no resident-wide deny names one.
#   Types without an entry are released whole.
category_rules[t] := {"grants": grants_of(t), "except": veto_except(t)} if {
	client
	categories_named
	some t in consent_types | break_glass_types
	restricted(t)
}

# Without a category in any provision every grant is of whole types: nothing to compute.
categories_named if {
	some c in input.consents
	count(categories_of(c.provision)) > 0
}

categories_named if {
	some c in input.consents
	some q in c.provision.provisions
	count(categories_of(q)) > 0
}

grants_of(t) := sort({g |
	some c in input.consents
	permits(c, t)
	g := grant(c.provision, t)
} | {g |
	t in break_glass_types
	g := {"only": null, "except": []}
})

grant(p, t) := {"only": null, "except": nested_except(p, t)} if whole(p, t)

grant(p, t) := {"only": part(p, t), "except": nested_except(p, t)} if not whole(p, t)

nested_except(p, t) := sort([cat |
	some q in p.provisions
	q.type == "deny"
	deny_applies(q)
	some cat in part(q, t)
])

veto_except(t) := sort([cat |
	some c in input.consents
	active(c)
	c.provision.type == "deny"
	deny_applies(c.provision)
	some cat in part(c.provision, t)
])

unrestricted(t) if {
	t in break_glass_types
	count(veto_except(t)) == 0
}

unrestricted(t) if {
	count(veto_except(t)) == 0
	some c in input.consents
	permits(c, t)
	whole(c.provision, t)
	count(nested_except(c.provision, t)) == 0
}

restricted(t) if not unrestricted(t)

# Sensitive classes are never opened by a general permit: a label is released only by
# a provision that names it. Proxies reading for a resident see what the resident sees.
default withheld_labels := []

withheld_labels := [l |
	some l in policy_data.sensitive_labels
	not [l.system, l.code] in opened_labels
] if {
	not self_access
	not proxy_reading
}

# Labels opened by a permit naming them, gathered in one pass over the consents.
opened_labels contains [named.system, named.code] if {
	some c in input.consents
	active(c)
	p := c.provision
	p.type == "permit"
	count(p.labels) > 0
	actor_named(p)
	requester.purpose in p.purposes
	within(p.period)
	some named in p.labels
}

# --- reasons ----------------------------------------------------------------------------

# Reasons for a refusal are looked for only where something asked for was refused.
some_denied if {
	some t in requested
	not t in allowed_types
}

# METADATA
# title: reidentification
# description: A compliance office re-identified a pseudonymized record.
# custom:
#   reason: reidentification
#   en: A compliance office re-identified a pseudonymized record.
#   zh: 合规部门对一条假名化记录进行了重新识别。
reasons contains "reidentification" if count(reidentify_types) > 0

# METADATA
# title: resident_self
# description: The resident reads or manages their own record.
# custom:
#   reason: resident_self
#   en: The resident reads or manages their own record.
#   zh: 居民本人查看或管理自己的档案。
reasons contains "resident_self" if self_access

# METADATA
# title: directory
# description: The community directory is open to every registered organization.
# custom:
#   reason: directory
#   en: The community directory is open to every registered organization.
#   zh: 社区机构名录向所有登记机构开放。
reasons contains "directory" if count(directory_types) > 0

# METADATA
# title: registration
# description: A clinic registered a new resident.
# custom:
#   reason: registration
#   en: A clinic registered a new resident.
#   zh: 诊所为新居民建档。
reasons contains "registration" if count(registration_types) > 0

# METADATA
# title: audit_oversight
# description: A compliance office reviewed the audit trail.
# custom:
#   reason: audit_oversight
#   en: A compliance office reviewed the audit trail.
#   zh: 合规部门查阅审计记录。
reasons contains "audit_oversight" if count(audit_types) > 0

# METADATA
# title: break_glass
# description: Emergency access without consent, with a stated reason.
# custom:
#   reason: break_glass
#   en: Emergency access without consent, with a stated reason.
#   zh: 紧急情况下未经同意访问，并说明了理由。
reasons contains "break_glass" if count(break_glass_types) > 0

# METADATA
# title: proxy
# description: A family member or guardian acted within the delegation.
# custom:
#   reason: proxy
#   en: A family member or guardian acted within the delegation.
#   zh: 家属或监护人在授权范围内代为操作。
reasons contains "proxy" if count(proxy_types) > 0

# METADATA
# title: proxy_outside_delegation
# description: The family member or guardian acted outside the delegation.
# custom:
#   reason: proxy_outside_delegation
#   en: The family member or guardian acted outside the delegation.
#   zh: 家属或监护人超出授权范围。
reasons contains "proxy_outside_delegation" if {
	some_denied
	requester.kind == "proxy"
	count(proxy_types) == 0
}

# METADATA
# title: break_glass_needs_reason
# description: "Emergency access was refused: no reason was given."
# custom:
#   reason: break_glass_needs_reason
#   en: "Emergency access was refused: no reason was given."
#   zh: 紧急访问被拒绝：未说明理由。
reasons contains "break_glass_needs_reason" if {
	some_denied
	client
	requester.purpose == policy_data.break_glass.purpose
	count(consent_types) == 0
	not break_glass_reason_given
}

# METADATA
# title: break_glass_opted_out
# description: "Emergency access was refused: the resident opted out."
# custom:
#   reason: break_glass_opted_out
#   en: "Emergency access was refused: the resident opted out."
#   zh: 紧急访问被拒绝：居民已选择退出紧急访问。
reasons contains "break_glass_opted_out" if {
	some_denied
	client
	requester.purpose == policy_data.break_glass.purpose
	break_glass_opted_out
}

# METADATA
# title: consent_permit
# description: The resident's consent allowed it.
# custom:
#   reason: consent_permit
#   en: The resident's consent allowed it.
#   zh: 居民的同意书允许此次访问。
reasons contains "consent_permit" if count(consent_types) > 0

# METADATA
# title: unknown_requester
# description: The requester could not be identified.
# custom:
#   reason: unknown_requester
#   en: The requester could not be identified.
#   zh: 无法识别请求方。
reasons contains "unknown_requester" if not requester.kind in {"client", "resident", "proxy"}

# METADATA
# title: other_resident
# description: A resident asked for another resident's record.
# custom:
#   reason: other_resident
#   en: A resident asked for another resident's record.
#   zh: 居民请求查看他人档案。
reasons contains "other_resident" if {
	some_denied
	requester.kind == "resident"
	not self_access
}

# METADATA
# title: unknown_purpose
# description: The purpose of use is not one the exchange knows.
# custom:
#   reason: unknown_purpose
#   en: The purpose of use is not one the exchange knows.
#   zh: 使用目的不在平台认可的范围内。
reasons contains "unknown_purpose" if {
	some_denied
	client
	not purpose_rules
}

# METADATA
# title: purpose_forbids_action
# description: The purpose does not allow this action.
# custom:
#   reason: purpose_forbids_action
#   en: The purpose does not allow this action.
#   zh: 该使用目的不允许此操作。
reasons contains "purpose_forbids_action" if {
	some_denied
	client
	purpose_rules
	not input.action in purpose_rules.actions
}

# METADATA
# title: scope_missing
# description: The organization's access scope does not cover this data.
# custom:
#   reason: scope_missing
#   en: The organization's access scope does not cover this data.
#   zh: 该机构的访问范围不包括这类数据。
reasons contains "scope_missing" if {
	some_denied
	client
	some t in requested
	not scope_allows(t)
}

# METADATA
# title: purpose_excludes_type
# description: This kind of data is not needed for the purpose.
# custom:
#   reason: purpose_excludes_type
#   en: This kind of data is not needed for the purpose.
#   zh: 该使用目的不需要这类数据。
reasons contains "purpose_excludes_type" if {
	some_denied
	client
	input.resident != null
	some t in requested
	purpose_rules
	not purpose_rules.fields[t]
}

# METADATA
# title: no_active_consent
# description: The resident has no consent in force.
# custom:
#   reason: no_active_consent
#   en: The resident has no consent in force.
#   zh: 居民没有生效的同意书。
reasons contains "no_active_consent" if {
	some_denied
	client
	input.resident != null
	count(registration_types) == 0
	count(break_glass_types) == 0
	count([c | some c in input.consents; active(c)]) == 0
}

# METADATA
# title: not_consented
# description: The resident has not consented to this.
# custom:
#   reason: not_consented
#   en: The resident has not consented to this.
#   zh: 居民未同意此次访问。
reasons contains "not_consented" if {
	some_denied
	client
	input.resident != null
	count(consent_types) == 0
	count(registration_types) == 0
	count(break_glass_types) == 0
}

# METADATA
# title: resident_managed
# description: Only the resident (or their proxy) may change this.
# custom:
#   reason: resident_managed
#   en: Only the resident (or their proxy) may change this.
#   zh: 只有居民本人（或其代理人）可以修改。
reasons contains "resident_managed" if {
	some_denied
	client
	some t in requested
	resident_managed_write(t)
}
