// The tests start the same in-process broker as `npm start`.
export {
  startInProcessBroker as startAedes,
  type InProcessBroker as AedesBroker,
} from '../../sample-app/demo/in-process-broker.js';
