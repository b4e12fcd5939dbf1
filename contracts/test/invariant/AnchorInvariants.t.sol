// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Base} from "../Base.t.sol";
import {AnchorHandler} from "./AnchorHandler.sol";
import {ReceiptAnchor} from "../../src/ReceiptAnchor.sol";
import {IReceiptAnchor} from "../../src/interfaces/IReceiptAnchor.sol";

/// @notice Stateful invariants over ReceiptAnchor (README.md, 7–10): the history an auditor reads
/// from the events is append-only per owner and table, agrees with the contract's table record,
/// and only the table's own identity ever wrote it.
contract AnchorInvariantsTest is Base {
    AnchorHandler internal handler;
    ReceiptAnchor internal anchor;

    function setUp() public override {
        super.setUp();
        anchor = new ReceiptAnchor(identity);
        handler = new AnchorHandler(identity, anchor);
        targetContract(address(handler));
    }

    /// The handler's actions really anchor, refuse overlaps, re-send and rotate.
    function test_handlerDrivesRealStateChanges() public {
        handler.anchorBatches(0, 0, 1);
        assertEq(handler.seenCount(), 1, "anchored one batch");
        handler.resend(0);
        assertEq(handler.ghostResendEvents(), 0, "re-send emitted nothing");
        handler.rotate(0);
        for (uint256 seed = 2; handler.seenCount() < 4 && seed < 100; ++seed) {
            handler.anchorBatches(seed, seed, seed); // some overlap and revert; most do not
        }
        handler.anchorAsDevice(5, 1);
        assertTrue(handler.seenCount() >= 4, "more batches after the rotation");
        assertEq(handler.ghostDeviceAnchors(), 0, "a device never anchors");
        invariant_anchoredRangesNeverOverlap();
        invariant_eventsAgreeWithTheTableRecord();
        invariant_onlyTheTablesIdentityAnchoredIt();
    }

    /// 7. Per owner and table, the ranges in the events are well-formed and strictly increasing.
    function invariant_anchoredRangesNeverOverlap() public view {
        AnchorHandler.Seen[] memory seen = handler.allSeen();
        for (uint256 i; i < seen.length; ++i) {
            assertTrue(seen[i].firstKey <= seen[i].lastKey, "first <= last");
            for (uint256 j = i + 1; j < seen.length; ++j) {
                if (seen[j].owner == seen[i].owner && seen[j].tableId == seen[i].tableId) {
                    assertTrue(seen[j].firstKey > seen[i].lastKey, "a later range starts above");
                }
            }
        }
    }

    /// 8. The contract's record of each table counts exactly the events seen and ends where the
    /// last one ends.
    function invariant_eventsAgreeWithTheTableRecord() public view {
        AnchorHandler.Seen[] memory seen = handler.allSeen();
        for (uint256 a; a < handler.SERVICES(); ++a) {
            for (uint256 t; t < handler.TABLES(); ++t) {
                address owner = handler.offline(a);
                bytes32 table = handler.tableId(t);
                uint256 events;
                int64 lastKey;
                for (uint256 i; i < seen.length; ++i) {
                    if (seen[i].owner == owner && seen[i].tableId == table) {
                        (events, lastKey) = (events + 1, seen[i].lastKey);
                    }
                }
                IReceiptAnchor.Table memory rec = anchor.tableOf(owner, table);
                assertEq(uint256(rec.batches), events, "batches == events");
                if (events != 0) assertEq(int256(rec.lastKey), int256(lastKey), "last key == last event's");
            }
        }
    }

    /// 9. Every batch was sent by a current key of the identity it is attributed to; no device
    /// anchored; re-sending emitted nothing.
    function invariant_onlyTheTablesIdentityAnchoredIt() public view {
        AnchorHandler.Seen[] memory seen = handler.allSeen();
        for (uint256 i; i < seen.length; ++i) {
            uint256 actor = handler.actorOfKey(seen[i].sender);
            assertTrue(actor != 0, "sent by a service key");
            assertEq(handler.offline(actor - 1), seen[i].owner, "attributed to the sender's own identity");
        }
        assertEq(handler.ghostDeviceAnchors(), 0, "no device anchored");
        assertEq(handler.ghostResendEvents(), 0, "re-sends are silent");
    }
}
