# METADATA
# title: Disclosure and write decisions
# description: >-
#   The one entry point, data.exchange.decision, for every read, search, export, feed item
#   and write. Input: input.schema.json beside this file. Consents arrive in input (the
#   resident's own), so a decision's cost does not grow with the population. Each concern
#   is a package of its own in the folder of its name; this one composes them. Packages
#   refer to each other by full path, not through imports (tests/policies/test_layout.py
#   says why).
package exchange

import rego.v1

# METADATA
# title: decision
# description: Allow or deny, with reasons, the consents relied on and obligations.
# entrypoint: true
decision := {
	"allow": count(allowed_types) > 0,
	"reasons": sort([r | some r in reasons]),
	"consents": sort([c | some c in data.exchange.consent.relied_on]),
	"obligations": {
		"form": data.exchange.disclosure.form,
		"profile": data.exchange.disclosure.profile,
		"search_profile": data.exchange.disclosure.search_profile,
		"types": {t: data.exchange.purposes.fields(t) | some t in allowed_types},
		"withhold_labels": data.exchange.sensitive.withheld,
		"categories": data.exchange.data_classes.rules,
	},
}

# A type asked for is allowed if one of the concerns allows it.
allowed_types contains t if some t in data.exchange.resident.types

allowed_types contains t if some t in data.exchange.directory.types

allowed_types contains t if some t in data.exchange.held.types

allowed_types contains t if some t in data.exchange.registration.types

allowed_types contains t if some t in data.exchange.consent.types

allowed_types contains t if some t in data.exchange.oversight.types

allowed_types contains t if some t in data.exchange.break_glass.types

allowed_types contains t if some t in data.exchange.proxy.types

allowed_types contains t if some t in data.exchange.reidentification.types

# --- reasons ----------------------------------------------------------------------------

# Each concern gives its reasons (its `reasons`), and its reasons for a refusal (its
# `refusals`) that are looked for only where something asked for was refused.
reasons contains r if some r in data.exchange.request.reasons

reasons contains r if some r in data.exchange.resident.reasons

reasons contains r if some r in data.exchange.directory.reasons

reasons contains r if some r in data.exchange.held.reasons

reasons contains r if some r in data.exchange.registration.reasons

reasons contains r if some r in data.exchange.oversight.reasons

reasons contains r if some r in data.exchange.reidentification.reasons

reasons contains r if some r in data.exchange.consent.reasons

reasons contains r if some r in data.exchange.break_glass.reasons

reasons contains r if some r in data.exchange.proxy.reasons

reasons contains r if {
	some_denied
	some r in refusals
}

some_denied if {
	some t in data.exchange.request.requested
	not t in allowed_types
}

refusals contains r if some r in data.exchange.request.refusals

refusals contains r if some r in data.exchange.resident.refusals

refusals contains r if some r in data.exchange.purposes.refusals

refusals contains r if some r in data.exchange.consent.refusals

refusals contains r if some r in data.exchange.break_glass.refusals

refusals contains r if some r in data.exchange.proxy.refusals

# The refusals below weigh together every basis a client may have for a resident's data:
# the resident's consents, a registration, break-glass.

# METADATA
# title: no_active_consent
# description: The resident has no consent in force.
# custom:
#   reason: no_active_consent
#   en: The resident has no consent in force.
#   zh: 居民没有生效的同意书。
refusals contains "no_active_consent" if {
	data.exchange.request.client
	input.resident != null
	count(data.exchange.registration.types) == 0
	count(data.exchange.break_glass.types) == 0
	count([c | some c in input.consents; data.exchange.consent.active(c)]) == 0
}

# METADATA
# title: not_consented
# description: The resident has not consented to this.
# custom:
#   reason: not_consented
#   en: The resident has not consented to this.
#   zh: 居民未同意此次访问。
refusals contains "not_consented" if {
	data.exchange.request.client
	input.resident != null
	count(data.exchange.consent.types) == 0
	count(data.exchange.registration.types) == 0
	count(data.exchange.break_glass.types) == 0
}
