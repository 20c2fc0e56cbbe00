# METADATA
# title: Break-glass
# description: >-
#   Emergency treatment without consent (data.exchange.static.break_glass): a clinic with
#   purpose ETREAT reads if it states a reason, unless the resident opted out. The road
#   flags it in the audit trail and in the resident's access history.
package exchange.break_glass

import rego.v1

settings := data.exchange.static.break_glass

# METADATA
# title: break_glass
# description: >-
#   Emergency treatment without consent: a clinic with purpose ETREAT may read if it
#   states a reason, unless the resident opted out. The road flags it in the audit trail
#   and in the resident's access history.
types contains t if {
	data.exchange.request.client
	input.resident != null
	not data.exchange.request.writing
	input.requester.purpose == settings.purpose
	input.requester.organization_kind in settings.allowed_kinds
	reason_given
	not opted_out
	some t in data.exchange.request.requested
	data.exchange.request.scope_allows(t)
	data.exchange.purposes.rules.fields[t]
	not t in data.exchange.static.audit_types
	not data.exchange.consent.vetoed(t)
}

reason_given if {
	count(trim_space(input.context.break_glass_reason)) >= settings.min_reason_length
}

# An active consent denying the break-glass purpose.
opted_out if {
	settings.opt_out_allowed
	some c in input.consents
	data.exchange.consent.active(c)
	c.provision.type == "deny"
	settings.purpose in c.provision.purposes
}

# METADATA
# title: break_glass
# description: Emergency access without consent, with a stated reason.
# custom:
#   reason: break_glass
#   en: Emergency access without consent, with a stated reason.
#   zh: 紧急情况下未经同意访问，并说明了理由。
reasons contains "break_glass" if count(types) > 0

# METADATA
# title: break_glass_needs_reason
# description: "Emergency access was refused: no reason was given."
# custom:
#   reason: break_glass_needs_reason
#   en: "Emergency access was refused: no reason was given."
#   zh: 紧急访问被拒绝：未说明理由。
refusals contains "break_glass_needs_reason" if {
	data.exchange.request.client
	input.requester.purpose == settings.purpose
	count(data.exchange.consent.types) == 0
	not reason_given
}

# METADATA
# title: break_glass_opted_out
# description: "Emergency access was refused: the resident opted out."
# custom:
#   reason: break_glass_opted_out
#   en: "Emergency access was refused: the resident opted out."
#   zh: 紧急访问被拒绝：居民已选择退出紧急访问。
refusals contains "break_glass_opted_out" if {
	data.exchange.request.client
	input.requester.purpose == settings.purpose
	opted_out
}
