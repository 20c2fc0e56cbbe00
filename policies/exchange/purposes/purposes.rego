# METADATA
# title: Purposes of use and minimization
# description: >-
#   What each purpose of use (HL7 v3 codes: TREAT, HPAYMT, ...) allows: its actions, and
#   per resource type the fields it keeps, from data.exchange.static.purposes. A type the
#   purpose does not list is not disclosed for it at all.
package exchange.purposes

import rego.v1

# The requester's purpose of use, as the policy data describes it.
rules := data.exchange.static.purposes[input.requester.purpose]

# The fields kept of each allowed type: what the purpose needs; all of them for the
# resident themself and for a proxy reading on their behalf.
fields(_) := ["*"] if whole_record

fields(t) := rules.fields[t] if {
	not whole_record
	rules.fields[t]
}

fields(t) := ["*"] if {
	not whole_record
	not rules.fields[t]
}

whole_record if data.exchange.resident.self_access

# A client writes only the types its purpose keeps whole: one that is shown part of a
# resource (payment sees a Condition's code, not its notes) would, by writing it,
# overwrite what it was never shown. Billing writes claims, not diagnoses.
writable(_) if not data.exchange.request.writing

writable(t) if {
	data.exchange.request.writing
	rules.fields[t] == ["*"]
}

whole_record if data.exchange.proxy.reading

# An organization's own records of no resident: it wrote them whole.
whole_record if data.exchange.held.own

# Types a purpose receives only as facts derived from them (the hub's care needs: an ADL
# band, a condition class, not the Observations and Conditions): read to derive, under
# the action "derive", and never disclosed as they are.
derived_only contains t if some t in object.get(rules, "derived_only", [])

discloses(t) if {
	input.action != "derive"
	not t in derived_only
}

discloses(t) if {
	input.action == "derive"
	t in derived_only
}

# METADATA
# title: purpose_gets_derived_facts
# description: The purpose receives facts derived from this type, not the records.
# custom:
#   reason: purpose_gets_derived_facts
#   en: For this purpose only facts derived from this kind of data are shared, not the records themselves.
#   zh: 该使用目的只获得由这类数据推导出的概括信息，不获得原始记录。
refusals contains "purpose_gets_derived_facts" if {
	data.exchange.request.client
	input.action != "derive"
	some t in data.exchange.request.requested
	t in derived_only
}

# METADATA
# title: unknown_purpose
# description: The purpose of use is not one the exchange knows.
# custom:
#   reason: unknown_purpose
#   en: The purpose of use is not one the exchange knows.
#   zh: 使用目的不在平台认可的范围内。
refusals contains "unknown_purpose" if {
	data.exchange.request.client
	not rules
}

# METADATA
# title: purpose_forbids_action
# description: The purpose does not allow this action.
# custom:
#   reason: purpose_forbids_action
#   en: The purpose does not allow this action.
#   zh: 该使用目的不允许此操作。
refusals contains "purpose_forbids_action" if {
	data.exchange.request.client
	rules
	not input.action in rules.actions
}

# METADATA
# title: purpose_excludes_type
# description: This kind of data is not needed for the purpose.
# custom:
#   reason: purpose_excludes_type
#   en: This kind of data is not needed for the purpose.
#   zh: 该使用目的不需要这类数据。
refusals contains "purpose_excludes_type" if {
	data.exchange.request.client
	input.resident != null
	some t in data.exchange.request.requested
	rules
	not rules.fields[t]
}

# METADATA
# title: purpose_sees_part
# description: The purpose is shown only part of this type, so it may not write it.
# custom:
#   reason: purpose_sees_part
#   en: The purpose is shown only part of this kind of data, so it may not change it.
#   zh: 该使用目的只能看到这类数据的一部分，因此不能修改。
refusals contains "purpose_sees_part" if {
	data.exchange.request.client
	data.exchange.request.writing
	some t in data.exchange.request.requested
	rules.fields[t]
	not writable(t)
}
